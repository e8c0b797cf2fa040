package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
	"github.com/imagegate/imagegate/internal/store/tally"
)

// AppendObservations writes the events and their aggregates (job_minutes
// too) in one fsynced transaction (see rollout.TelemetryStore).
// Concurrent calls are group-committed (package batch): their batches go
// into one transaction, so the WAL pages they share (the counters, the
// index pages the events land on) are written and fsynced once. SQLite
// runs one statement per aggregate row; to keep up with ingest, set
// members this process has already seen committed are not inserted again
// (telCache): they are never deleted, so the insert would be a no-op.
func (db *DB) AppendObservations(ctx context.Context, obs []rollout.Observation) (int, error) {
	if err := rollout.CheckObservations(obs); err != nil {
		return 0, err
	}
	if len(obs) == 0 {
		return 0, nil
	}
	c := &obsCall{obs: obs}
	err := db.events.Do(ctx, c)
	if err == nil {
		err = c.err
	}
	if err != nil {
		return 0, fmt.Errorf("append %d events: %w", len(obs), err)
	}
	return c.added, nil
}

// obsCall is one AppendObservations call in a group commit.
type obsCall struct {
	obs   []rollout.Observation
	added int
	err   error
}

// maxGroupEvents bounds the events of one group commit: a few batches of
// a runner's size, so a commit's latency stays that of a few batches.
const maxGroupEvents = 4000

// appendGroup writes the calls' batches in one transaction, in call
// order, so that of two calls reporting one job the first counts it. When
// that fails and it held several calls, each is written alone, so that
// one bad batch fails only its own caller.
func (db *DB) appendGroup(ctx context.Context, calls []*obsCall) error {
	err := db.appendCalls(ctx, calls)
	if err == nil || len(calls) == 1 {
		return err
	}
	for _, c := range calls {
		c.err = db.appendCalls(ctx, []*obsCall{c})
	}
	return nil
}

func (db *DB) appendCalls(ctx context.Context, calls []*obsCall) error {
	var obs []rollout.Observation
	if len(calls) == 1 {
		obs = calls[0].obs
	} else {
		n := 0
		for _, c := range calls {
			n += len(c.obs)
		}
		obs = make([]rollout.Observation, 0, n)
		for _, c := range calls {
			obs = append(obs, c.obs...)
		}
	}
	var learned []string
	var counted []bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		learned = learned[:0]
		var fresh []rollout.Observation
		var err error
		fresh, counted, err = insertObservations(ctx, tx, obs)
		if err != nil {
			return err
		}
		if err := applyAliases(ctx, tx, fresh); err != nil {
			return err
		}
		if learned, err = db.writeTally(ctx, tx, tally.Group(fresh), learned); err != nil {
			return err
		}
		// fresh holds the rows stored: of a job repeated in obs, the
		// first (SQLite inserts the rows of a statement in order).
		var minutes tally.Minutes
		for i := range fresh {
			o := &fresh[i]
			minutes.Add(o.Label, o.Version, o.Ring, o.StartedAt, o.Outcome)
		}
		return writeMinutes(ctx, tx, minutes.Rows())
	})
	if err != nil {
		return err
	}
	db.tel.add(learned)
	for _, c := range calls {
		c.added = 0
		for _, ok := range counted[:len(c.obs)] {
			if ok {
				c.added++
			}
		}
		counted = counted[len(c.obs):]
	}
	return nil
}

// applyAliases records the aliases obs carry (PreviousSignature → the
// id that generalised it) and moves every observation reported under an
// aliased id to its surviving one, so that counts continue there.
func applyAliases(ctx context.Context, tx *sql.Tx, obs []rollout.Observation) error {
	var sel *sql.Stmt
	resolved := map[string]string{}
	resolve := func(id string) (string, error) {
		if to, ok := resolved[id]; ok {
			return to, nil
		}
		if sel == nil {
			var err error
			if sel, err = tx.PrepareContext(ctx, `SELECT alias_of FROM tel_aliases WHERE signature = ?`); err != nil {
				return "", err
			}
		}
		to := id
		if err := sel.QueryRowContext(ctx, id).Scan(&to); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("signature alias: %w", err)
		}
		resolved[id] = to
		return to, nil
	}
	defer func() {
		if sel != nil {
			sel.Close()
		}
	}()
	for i := range obs {
		o := &obs[i]
		if o.PreviousSignature == "" || o.Signature == "" || o.PreviousSignature == o.Signature {
			continue
		}
		to, err := resolve(o.Signature)
		if err != nil {
			return err
		}
		if from, err := resolve(o.PreviousSignature); err != nil || from == to {
			if err != nil {
				return err
			}
			continue // known already, or a cycle: keep what is stored
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tel_aliases (signature, alias_of) VALUES (?, ?)
			ON CONFLICT DO UPDATE SET alias_of = excluded.alias_of`, o.PreviousSignature, to); err != nil {
			return fmt.Errorf("signature alias: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tel_aliases SET alias_of = ? WHERE alias_of = ?`, to, o.PreviousSignature); err != nil {
			return fmt.Errorf("signature alias: %w", err)
		}
		for k, v := range resolved {
			if v == o.PreviousSignature {
				resolved[k] = to
			}
		}
		resolved[o.PreviousSignature] = to
	}
	for i := range obs {
		o := &obs[i]
		if o.Signature == "" {
			continue
		}
		to, err := resolve(o.Signature)
		if err != nil {
			return err
		}
		if to != o.Signature {
			o.Signature, o.Template = to, ""
		}
	}
	return nil
}

// insertObservations inserts the events and returns those that were new,
// and which of obs they were (a job repeated in obs counts at its first).
// Rows go eventsPerInsert to a statement: with modernc's driver the cost
// of a statement, not of a row, dominated ingest. Usually every job is
// new, and the rows changed tell so without RETURNING each job id (a
// seventh of the insert's cost); when some were stored already, the
// inserts are rolled back to a savepoint and made again with RETURNING.
func insertObservations(ctx context.Context, tx *sql.Tx, obs []rollout.Observation) ([]rollout.Observation, []bool, error) {
	ids := make(map[string]bool, len(obs)) // distinct jobs; true: new
	for _, o := range obs {
		ids[o.JobID] = false
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT insert_events`); err != nil {
		return nil, nil, fmt.Errorf("insert events: %w", err)
	}
	added, err := insertEvents(ctx, tx, obs, nil)
	if err == nil && added != int64(len(ids)) {
		if _, err = tx.ExecContext(ctx, `ROLLBACK TO insert_events`); err == nil {
			_, err = insertEvents(ctx, tx, obs, ids)
		}
	} else if err == nil {
		for id := range ids {
			ids[id] = true
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if _, err := tx.ExecContext(ctx, `RELEASE insert_events`); err != nil {
		return nil, nil, fmt.Errorf("insert events: %w", err)
	}
	fresh := make([]rollout.Observation, 0, len(ids))
	counted := make([]bool, len(obs))
	for i, o := range obs {
		if ids[o.JobID] {
			fresh, counted[i] = append(fresh, o), true
			ids[o.JobID] = false // a duplicate in the batch counts once
		}
	}
	return fresh, counted, nil
}

// insertEvents inserts obs, those stored already left as they are, and
// returns how many it inserted. With isNew it also marks there the job
// ids it inserted (RETURNING them).
func insertEvents(ctx context.Context, tx *sql.Tx, obs []rollout.Observation, isNew map[string]bool) (int64, error) {
	const cols = 16
	returning := isNew != nil
	full, err := tx.PrepareContext(ctx, insertEventsSQL(eventsPerInsert, returning))
	if err != nil {
		return 0, err
	}
	defer full.Close()
	var added int64
	args := make([]any, 0, cols*eventsPerInsert)
	for start := 0; start < len(obs); start += eventsPerInsert {
		chunk := obs[start:min(start+eventsPerInsert, len(obs))]
		args = args[:0]
		for _, o := range chunk {
			args = append(args, o.JobID, o.Org, o.Label, o.Version, o.Ring, o.Outcome, us(o.StartedAt),
				o.DurationMs, o.ErrorText, o.Pipeline, o.RunID, us(o.ReceivedAt), o.RolloutID, o.Stage, o.Cohort, o.Signature)
		}
		st := full
		if len(chunk) < eventsPerInsert {
			if st, err = tx.PrepareContext(ctx, insertEventsSQL(len(chunk), returning)); err != nil {
				return 0, err
			}
			defer st.Close()
		}
		if !returning {
			n, err := execN(ctx, st, args...)
			if err != nil {
				return 0, fmt.Errorf("insert events: %w", err)
			}
			added += n
			continue
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return 0, fmt.Errorf("insert events: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, fmt.Errorf("insert events: %w", err)
			}
			isNew[id] = true
			added++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("insert events: %w", err)
		}
	}
	return added, nil
}

const eventsPerInsert = 50

func insertEventsSQL(n int, returning bool) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (job_id, org, label, version, ring, outcome, started_at, duration_ms, error_text,
		pipeline, run_id, received_at, rollout_id, stage, cohort, signature) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	b.WriteString(" ON CONFLICT DO NOTHING")
	if returning {
		b.WriteString(" RETURNING job_id")
	}
	return b.String()
}

type ringSigKey struct {
	tally.Ring
	sig string
}

type versionSigKey struct{ label, version, sig string }

// writeTally writes b's rows. Counters go last: they are the rows every
// batch touches. History goes first, so that the evidence judged in the
// same batch sees it (a backfilled job in the batch counts).
func (db *DB) writeTally(ctx context.Context, tx *sql.Tx, b tally.Batch, learned []string) ([]string, error) {
	vNew := map[versionSigKey]*[2]int64{}
	bump := func(k versionSigKey, i int) {
		c := vNew[k]
		if c == nil {
			c = new([2]int64)
			vNew[k] = c
		}
		c[i]++
	}
	var lowered []tally.History // rows whose first_seen this batch set or lowered
	if len(b.History) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO tel_history (label, pipeline, signature, version, first_seen, last_seen, jobs)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
			last_seen = max(last_seen, excluded.last_seen), jobs = jobs + excluded.jobs RETURNING jobs, first_seen`)
		if err != nil {
			return learned, err
		}
		defer st.Close()
		for _, h := range b.History {
			var jobs, first int64
			if err := st.QueryRowContext(ctx, h.Label, h.Pipeline, h.Signature, h.Version, us(h.First), us(h.Last), h.Jobs).Scan(&jobs, &first); err != nil {
				return learned, fmt.Errorf("signature history: %w", err)
			}
			if jobs == h.Jobs { // nothing was there before
				bump(versionSigKey{h.Label, h.Version, h.Signature}, 0)
			}
			if first == us(h.First) {
				lowered = append(lowered, h)
			}
		}
	}
	// New evidence per ring signature: fresh pipelines and, for the new
	// cohort, orgs that got their first fresh pipeline (negative when
	// backfilled history took them away).
	evidence := map[ringSigKey]*[2]int64{}
	addEvidence := func(k ringSigKey, pipes, orgs int64) {
		c := evidence[k]
		if c == nil {
			c = new([2]int64)
			evidence[k] = c
		}
		c[0] += pipes
		c[1] += orgs
	}
	if err := unfreshen(ctx, tx, lowered, addEvidence); err != nil {
		return learned, err
	}

	expNew := map[tally.Ring]*[2]int64{} // new pipelines, orgs
	sigNew := map[ringSigKey]*[2]int64{}
	var candidates []tally.RingMember // new control/old signature pipelines: evidence unless history
	if len(b.RingMembers) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO tel_ring_members (rollout_id, stage, cohort, signature, kind, member, org)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return learned, err
		}
		defer st.Close()
		// A new cohort's signature pipeline is judged as it is inserted:
		// fresh unless the pipeline produced the signature on another
		// version before the rollout was created.
		stNew, err := tx.PrepareContext(ctx, `INSERT INTO tel_ring_members (rollout_id, stage, cohort, signature, kind, member, org, fresh)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, (SELECT NOT EXISTS (SELECT 1 FROM rollouts r JOIN tel_history h ON h.label = r.label
				AND h.pipeline = ?6 AND h.signature IN (SELECT ?4 UNION ALL SELECT signature FROM tel_aliases WHERE alias_of = ?4)
				AND h.version <> r.version AND h.first_seen < r.created_at WHERE r.id = ?1)))
			ON CONFLICT DO NOTHING RETURNING fresh`)
		if err != nil {
			return learned, err
		}
		defer stNew.Close()
		orgs, err := tx.PrepareContext(ctx, `INSERT INTO tel_ring_sig_orgs (rollout_id, stage, cohort, signature, org, fresh)
			VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT DO UPDATE SET fresh = fresh + 1 RETURNING fresh`)
		if err != nil {
			return learned, err
		}
		defer orgs.Close()
		for _, m := range b.RingMembers {
			key := "m\x00" + m.RolloutID + "\x00" + strconv.Itoa(m.Stage) + "\x00" + m.Cohort + "\x00" + m.Signature + "\x00" + m.Kind + "\x00" + m.Member
			if db.tel.has(key) {
				continue
			}
			var n int64
			if m.Cohort == rollout.CohortNew && m.Signature != "" && m.Kind == tally.KindPipeline {
				var fresh bool
				switch err := stNew.QueryRowContext(ctx, m.RolloutID, m.Stage, m.Cohort, m.Signature, m.Kind, m.Member, m.Org).Scan(&fresh); {
				case errors.Is(err, sql.ErrNoRows):
				case err != nil:
					return learned, fmt.Errorf("ring member: %w", err)
				default:
					n = 1
					if fresh {
						var perOrg int64
						if err := orgs.QueryRowContext(ctx, m.RolloutID, m.Stage, m.Cohort, m.Signature, m.Org).Scan(&perOrg); err != nil {
							return learned, fmt.Errorf("signature evidence: %w", err)
						}
						addEvidence(ringSigKey{m.Ring, m.Signature}, 1, b2i64(perOrg == 1))
					}
				}
			} else {
				var err error
				if n, err = execN(ctx, st, m.RolloutID, m.Stage, m.Cohort, m.Signature, m.Kind, m.Member, m.Org); err != nil {
					return learned, fmt.Errorf("ring member: %w", err)
				}
			}
			learned = append(learned, key)
			if n == 0 {
				continue
			}
			var c *[2]int64
			if m.Signature == "" {
				if c = expNew[m.Ring]; c == nil {
					c = new([2]int64)
					expNew[m.Ring] = c
				}
			} else {
				k := ringSigKey{m.Ring, m.Signature}
				if c = sigNew[k]; c == nil {
					c = new([2]int64)
					sigNew[k] = c
				}
			}
			if m.Kind == tally.KindPipeline {
				c[0]++
				if m.Signature != "" && (m.Cohort == rollout.CohortControl || m.Cohort == rollout.CohortOld) {
					candidates = append(candidates, m)
				}
			} else {
				c[1]++
			}
		}
	}
	if len(candidates) > 0 {
		st, err := tx.PrepareContext(ctx, `SELECT NOT EXISTS (SELECT 1 FROM rollouts r JOIN tel_history h ON h.label = r.label
			AND h.pipeline = ?1 AND h.signature IN (SELECT ?2 UNION ALL SELECT signature FROM tel_aliases WHERE alias_of = ?2)
			AND h.version <> r.version AND h.first_seen < r.created_at WHERE r.id = ?3)`)
		if err != nil {
			return learned, err
		}
		defer st.Close()
		for _, m := range candidates {
			var fresh bool
			if err := st.QueryRowContext(ctx, m.Member, m.Signature, m.RolloutID).Scan(&fresh); err != nil {
				return learned, fmt.Errorf("signature evidence: %w", err)
			}
			if fresh {
				addEvidence(ringSigKey{m.Ring, m.Signature}, 1, 0)
			}
		}
	}
	if len(b.VersionOrgs) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO tel_version_orgs (label, version, signature, org) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return learned, err
		}
		defer st.Close()
		for _, o := range b.VersionOrgs {
			key := "o\x00" + o.Label + "\x00" + o.Version + "\x00" + o.Signature + "\x00" + o.Org
			if db.tel.has(key) {
				continue
			}
			n, err := execN(ctx, st, o.Label, o.Version, o.Signature, o.Org)
			if err != nil {
				return learned, fmt.Errorf("signature org: %w", err)
			}
			learned = append(learned, key)
			if n == 1 {
				bump(versionSigKey{o.Label, o.Version, o.Signature}, 1)
			}
		}
	}
	var err error
	if learned, err = db.writeExamples(ctx, tx, b.Examples, learned); err != nil {
		return learned, err
	}
	if len(b.Templates) > 0 {
		// Never updated: readers cache templates (templateCache).
		st, err := tx.PrepareContext(ctx, `INSERT INTO tel_templates (signature, template) VALUES (?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return learned, err
		}
		defer st.Close()
		for _, t := range b.Templates {
			key := "t\x00" + t.Signature
			if db.tel.has(key) {
				continue
			}
			if _, err := st.ExecContext(ctx, t.Signature, t.Template); err != nil {
				return learned, fmt.Errorf("signature template: %w", err)
			}
			learned = append(learned, key)
		}
	}

	if len(b.VersionSigs) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO tel_signatures (label, version, signature, first_seen, last_seen, jobs, pipelines, orgs)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
			last_seen = max(last_seen, excluded.last_seen), jobs = jobs + excluded.jobs,
			pipelines = pipelines + excluded.pipelines, orgs = orgs + excluded.orgs`)
		if err != nil {
			return learned, err
		}
		defer st.Close()
		for _, v := range b.VersionSigs {
			c := vNew[versionSigKey{v.Label, v.Version, v.Signature}]
			if c == nil {
				c = new([2]int64)
			}
			if _, err := st.ExecContext(ctx, v.Label, v.Version, v.Signature, us(v.First), us(v.Last), v.Jobs, c[0], c[1]); err != nil {
				return learned, fmt.Errorf("version signature: %w", err)
			}
		}
	}
	if len(b.RingSigs) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO tel_ring_sigs (rollout_id, stage, cohort, signature, jobs, pipelines, orgs, evidence, evidence_orgs)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET jobs = jobs + excluded.jobs,
			pipelines = pipelines + excluded.pipelines, orgs = orgs + excluded.orgs, evidence = evidence + excluded.evidence,
			evidence_orgs = evidence_orgs + excluded.evidence_orgs`)
		if err != nil {
			return learned, err
		}
		defer st.Close()
		for _, s := range b.RingSigs {
			k := ringSigKey{s.Ring, s.Signature}
			c := sigNew[k]
			if c == nil {
				c = new([2]int64)
			}
			ev := evidence[k]
			if ev == nil {
				ev = new([2]int64)
			}
			delete(evidence, k)
			if _, err := st.ExecContext(ctx, s.RolloutID, s.Stage, s.Cohort, s.Signature, s.Jobs, c[0], c[1], ev[0], ev[1]); err != nil {
				return learned, fmt.Errorf("ring signature: %w", err)
			}
		}
	}
	if len(evidence) > 0 {
		// Evidence taken away by backfilled history, in rings this batch
		// has no job of.
		st, err := tx.PrepareContext(ctx, `UPDATE tel_ring_sigs SET evidence = evidence + ?, evidence_orgs = evidence_orgs + ?
			WHERE rollout_id = ? AND stage = ? AND cohort = ? AND signature = ?`)
		if err != nil {
			return learned, err
		}
		defer st.Close()
		for k, ev := range evidence {
			if _, err := st.ExecContext(ctx, ev[0], ev[1], k.RolloutID, k.Stage, k.Cohort, k.sig); err != nil {
				return learned, fmt.Errorf("ring signature: %w", err)
			}
		}
	}
	if err := upsertRows(ctx, tx, `INSERT INTO tel_sig_hours (label, version, signature, hour, jobs) VALUES `, "(?, ?, ?, ?, ?)",
		` ON CONFLICT DO UPDATE SET jobs = jobs + excluded.jobs`, len(b.SigHours),
		func(i int, args []any) []any {
			h := &b.SigHours[i]
			return append(args, h.Label, h.Version, h.Signature, h.Hour, h.Jobs)
		}); err != nil {
		return learned, fmt.Errorf("signature hours: %w", err)
	}
	if err := upsertRows(ctx, tx, `INSERT INTO tel_ring_hours (rollout_id, stage, cohort, hour, jobs, failed) VALUES `, "(?, ?, ?, ?, ?, ?)",
		` ON CONFLICT DO UPDATE SET jobs = jobs + excluded.jobs, failed = failed + excluded.failed`, len(b.RingHours),
		func(i int, args []any) []any {
			h := &b.RingHours[i]
			return append(args, h.RolloutID, h.Stage, h.Cohort, h.Hour, h.Jobs, h.Failed)
		}); err != nil {
		return learned, fmt.Errorf("ring hours: %w", err)
	}
	if err := upsertRows(ctx, tx, `INSERT INTO tel_org_days (label, version, org, day, jobs, failed) VALUES `, "(?, ?, ?, ?, ?, ?)",
		` ON CONFLICT DO UPDATE SET jobs = jobs + excluded.jobs, failed = failed + excluded.failed`, len(b.OrgDays),
		func(i int, args []any) []any {
			d := &b.OrgDays[i]
			return append(args, d.Label, d.Version, d.Org, d.Day, d.Jobs, d.Failed)
		}); err != nil {
		return learned, fmt.Errorf("org days: %w", err)
	}
	if err := upsertRows(ctx, tx, `INSERT INTO tel_ring_orgs (rollout_id, stage, cohort, org, failed) VALUES `, "(?, ?, ?, ?, ?)",
		` ON CONFLICT DO UPDATE SET failed = failed + excluded.failed`, len(b.RingOrgs),
		func(i int, args []any) []any {
			o := &b.RingOrgs[i]
			return append(args, o.RolloutID, o.Stage, o.Cohort, o.Org, o.Failed)
		}); err != nil {
		return learned, fmt.Errorf("ring orgs: %w", err)
	}
	if len(b.Exposure) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO tel_exposure (rollout_id, stage, cohort, jobs, failed, pipelines, orgs)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET jobs = jobs + excluded.jobs, failed = failed + excluded.failed,
			pipelines = pipelines + excluded.pipelines, orgs = orgs + excluded.orgs`)
		if err != nil {
			return learned, err
		}
		defer st.Close()
		for _, e := range b.Exposure {
			c := expNew[e.Ring]
			if c == nil {
				c = new([2]int64)
			}
			if _, err := st.ExecContext(ctx, e.RolloutID, e.Stage, e.Cohort, e.Jobs, e.Failed, c[0], c[1]); err != nil {
				return learned, fmt.Errorf("exposure: %w", err)
			}
		}
	}
	return learned, nil
}

// unfreshen clears the fresh mark of the new cohort's signature pipelines
// that history in lowered (rows whose first_seen this batch set or
// lowered) gives a past: the pipeline produced the signature on another
// version before their rollout was created. For live events no rollout
// was created after them, and it costs one query per label.
func unfreshen(ctx context.Context, tx *sql.Tx, lowered []tally.History, add func(k ringSigKey, pipes, orgs int64)) error {
	if len(lowered) == 0 {
		return nil
	}
	since := map[string]int64{}
	for _, h := range lowered {
		if f, ok := since[h.Label]; !ok || us(h.First) < f {
			since[h.Label] = us(h.First)
		}
	}
	type later struct {
		id, version string
		created     int64
	}
	rollouts := map[string][]later{}
	for label, f := range since {
		rows, err := tx.QueryContext(ctx, `SELECT id, version, created_at FROM rollouts WHERE label = ? AND created_at > ?`, label, f)
		if err != nil {
			return fmt.Errorf("backfilled history: %w", err)
		}
		for rows.Next() {
			var r later
			if err := rows.Scan(&r.id, &r.version, &r.created); err != nil {
				rows.Close()
				return fmt.Errorf("backfilled history: %w", err)
			}
			rollouts[label] = append(rollouts[label], r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("backfilled history: %w", err)
		}
	}
	if len(rollouts) == 0 {
		return nil
	}
	upd, err := tx.PrepareContext(ctx, `UPDATE tel_ring_members SET fresh = 0 WHERE rollout_id = ?1
		AND stage IN (SELECT stage FROM rollout_stages WHERE rollout_id = ?1) AND cohort = ?2 AND signature = ?3
		AND kind = ?4 AND member = ?5 AND fresh = 1 RETURNING stage, org`)
	if err != nil {
		return err
	}
	defer upd.Close()
	dec, err := tx.PrepareContext(ctx, `UPDATE tel_ring_sig_orgs SET fresh = fresh - 1
		WHERE rollout_id = ? AND stage = ? AND cohort = ? AND signature = ? AND org = ? RETURNING fresh`)
	if err != nil {
		return err
	}
	defer dec.Close()
	type member struct {
		stage int
		org   string
	}
	for _, h := range lowered {
		for _, r := range rollouts[h.Label] {
			if r.version == h.Version || r.created <= us(h.First) {
				continue
			}
			rows, err := upd.QueryContext(ctx, r.id, rollout.CohortNew, h.Signature, tally.KindPipeline, h.Pipeline)
			if err != nil {
				return fmt.Errorf("backfilled history: %w", err)
			}
			var ms []member
			for rows.Next() {
				var m member
				if err := rows.Scan(&m.stage, &m.org); err != nil {
					rows.Close()
					return fmt.Errorf("backfilled history: %w", err)
				}
				ms = append(ms, m)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("backfilled history: %w", err)
			}
			for _, m := range ms {
				var left int64
				if err := dec.QueryRowContext(ctx, r.id, m.stage, rollout.CohortNew, h.Signature, m.org).Scan(&left); err != nil {
					return fmt.Errorf("backfilled history: %w", err)
				}
				add(ringSigKey{tally.Ring{RolloutID: r.id, Stage: m.stage, Cohort: rollout.CohortNew}, h.Signature}, -1, -b2i64(left == 0))
			}
		}
	}
	return nil
}

func b2i64(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// writeExamples fills the free example slots of each version's signature
// with the batch's messages not stored yet.
func (db *DB) writeExamples(ctx context.Context, tx *sql.Tx, exs []tally.Example, learned []string) ([]string, error) {
	if len(exs) == 0 {
		return learned, nil
	}
	sel, err := tx.PrepareContext(ctx, `SELECT slot, message FROM tel_examples WHERE label = ? AND version = ? AND signature = ?`)
	if err != nil {
		return learned, err
	}
	defer sel.Close()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO tel_examples (label, version, signature, slot, message) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return learned, err
	}
	defer ins.Close()
	for i := 0; i < len(exs); {
		j := i + 1
		for j < len(exs) && exs[j].Label == exs[i].Label && exs[j].Version == exs[i].Version && exs[j].Signature == exs[i].Signature {
			j++
		}
		e := exs[i]
		group := exs[i:j]
		i = j
		key := "x\x00" + e.Label + "\x00" + e.Version + "\x00" + e.Signature
		if db.tel.has(key) {
			continue
		}
		var used [tally.MaxExamples]bool
		have := map[string]bool{}
		rows, err := sel.QueryContext(ctx, e.Label, e.Version, e.Signature)
		if err != nil {
			return learned, fmt.Errorf("examples: %w", err)
		}
		for rows.Next() {
			var slot int
			var msg string
			if err := rows.Scan(&slot, &msg); err != nil {
				rows.Close()
				return learned, fmt.Errorf("examples: %w", err)
			}
			if slot >= 0 && slot < len(used) {
				used[slot] = true
			}
			have[msg] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return learned, fmt.Errorf("examples: %w", err)
		}
		slot := 0
		for _, g := range group {
			for slot < len(used) && used[slot] {
				slot++
			}
			if slot == len(used) {
				break
			}
			if have[g.Message] {
				continue
			}
			if _, err := ins.ExecContext(ctx, e.Label, e.Version, e.Signature, slot, g.Message); err != nil {
				return learned, fmt.Errorf("example: %w", err)
			}
			used[slot], have[g.Message] = true, true
		}
		if used == [tally.MaxExamples]bool{true, true, true} {
			learned = append(learned, key)
		}
	}
	return learned, nil
}

// upsertRows writes n rows rowsPerUpsert to a statement (head, one
// placeholder group per row, tail), args appending row i's values: with
// hundreds of counter rows a batch, the cost of a statement dominates.
func upsertRows(ctx context.Context, tx *sql.Tx, head, group, tail string, n int, args func(i int, args []any) []any) error {
	if n == 0 {
		return nil
	}
	build := func(rows int) string {
		var b strings.Builder
		b.WriteString(head)
		for i := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(group)
		}
		b.WriteString(tail)
		return b.String()
	}
	var full *sql.Stmt
	if n >= rowsPerUpsert {
		var err error
		if full, err = tx.PrepareContext(ctx, build(rowsPerUpsert)); err != nil {
			return err
		}
		defer full.Close()
	}
	var a []any
	for start := 0; start < n; start += rowsPerUpsert {
		end := min(start+rowsPerUpsert, n)
		a = a[:0]
		for i := start; i < end; i++ {
			a = args(i, a)
		}
		var err error
		if end-start == rowsPerUpsert {
			_, err = full.ExecContext(ctx, a...)
		} else {
			_, err = tx.ExecContext(ctx, build(end-start), a...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

const rowsPerUpsert = 100

func execN(ctx context.Context, st *sql.Stmt, args ...any) (int64, error) {
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RolloutStages reads the stages the triggers of migration 0004 wrote.
func (db *DB) RolloutStages(ctx context.Context, rolloutID string) ([]rollout.Stage, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT stage, started_at FROM rollout_stages WHERE rollout_id = ? ORDER BY stage`, rolloutID)
	if err != nil {
		return nil, fmt.Errorf("stages of rollout %s: %w", rolloutID, err)
	}
	defer rows.Close()
	var out []rollout.Stage
	for rows.Next() {
		var s rollout.Stage
		var at int64
		if err := rows.Scan(&s.Ring, &at); err != nil {
			return nil, fmt.Errorf("stages of rollout %s: %w", rolloutID, err)
		}
		s.StartedAt = fromUS(at)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stages of rollout %s: %w", rolloutID, err)
	}
	return out, nil
}

// RingTelemetry reads the aggregates of one ring in a few queries on one
// read transaction (a consistent snapshot).
func (db *DB) RingTelemetry(ctx context.Context, rolloutID string, stage int) (rollout.Telemetry, error) {
	t := rollout.Telemetry{RolloutID: rolloutID, Stage: stage, Exposure: map[string]rollout.Exposure{}}
	tx, err := db.rd.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return t, fmt.Errorf("telemetry of rollout %s: %w", rolloutID, err)
	}
	defer tx.Rollback()
	var label, version, from string
	var created int64
	err = tx.QueryRowContext(ctx, `SELECT label, version, from_version, created_at FROM rollouts WHERE id = ?`, rolloutID).
		Scan(&label, &version, &from, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("rollout %s: %w", rolloutID, rollout.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("telemetry of rollout %s: %w", rolloutID, err)
	}
	wrap := func(err error) error { return fmt.Errorf("telemetry of rollout %s ring %d: %w", rolloutID, stage, err) }

	rows, err := tx.QueryContext(ctx, `SELECT cohort, jobs, failed, pipelines, orgs FROM tel_exposure WHERE rollout_id = ? AND stage = ?`, rolloutID, stage)
	if err != nil {
		return t, wrap(err)
	}
	for rows.Next() {
		var c string
		var e rollout.Exposure
		if err := rows.Scan(&c, &e.Jobs, &e.Failed, &e.Pipelines, &e.Orgs); err != nil {
			rows.Close()
			return t, wrap(err)
		}
		t.Exposure[c] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t, wrap(err)
	}

	// Failed jobs per org: all of a ring's failing orgs are a few thousand
	// rows at most.
	rows, err = tx.QueryContext(ctx, `SELECT cohort, failed FROM tel_ring_orgs WHERE rollout_id = ? AND stage = ? AND failed > 0`, rolloutID, stage)
	if err != nil {
		return t, wrap(err)
	}
	failedBy := map[string][]int64{}
	for rows.Next() {
		var c string
		var n int64
		if err := rows.Scan(&c, &n); err != nil {
			rows.Close()
			return t, wrap(err)
		}
		failedBy[c] = append(failedBy[c], n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t, wrap(err)
	}
	for c, counts := range failedBy {
		if e, ok := t.Exposure[c]; ok {
			e.FailedOrgs, e.TopOrgFailed = int64(len(counts)), tally.Top(counts, rollout.MaxTopOrgs)
			t.Exposure[c] = e
		}
	}
	if from != "" && len(t.Exposure) > 0 {
		// Two range scans summed here rather than a join that seeks each
		// member org's days: every org is a member of several cohorts.
		rows, err = tx.QueryContext(ctx, `SELECT org, SUM(jobs), SUM(failed) FROM tel_org_days
			WHERE label = ? AND version = ? AND day <= ? GROUP BY org`, label, from, tally.DayOf(fromUS(created)))
		if err != nil {
			return t, wrap(err)
		}
		hist := map[string][2]int64{}
		for rows.Next() {
			var org string
			var jobs, failed int64
			if err := rows.Scan(&org, &jobs, &failed); err != nil {
				rows.Close()
				return t, wrap(err)
			}
			hist[org] = [2]int64{jobs, failed}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return t, wrap(err)
		}
		if len(hist) > 0 {
			st, err := tx.PrepareContext(ctx, `SELECT member FROM tel_ring_members
				WHERE rollout_id = ? AND stage = ? AND cohort = ? AND signature = '' AND kind = ?`)
			if err != nil {
				return t, wrap(err)
			}
			defer st.Close()
			for c, e := range t.Exposure {
				rows, err := st.QueryContext(ctx, rolloutID, stage, c, tally.KindOrg)
				if err != nil {
					return t, wrap(err)
				}
				for rows.Next() {
					var org string
					if err := rows.Scan(&org); err != nil {
						rows.Close()
						return t, wrap(err)
					}
					h := hist[org]
					e.HistoryJobs += h[0]
					e.HistoryFailed += h[1]
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return t, wrap(err)
				}
				t.Exposure[c] = e
			}
		}
	}

	// A signature aliased to another (its template generalised) counts as
	// the surviving one: its rows are summed into it.
	rows, err = tx.QueryContext(ctx, `SELECT s.signature, COALESCE(a.alias_of, s.signature), s.cohort, s.jobs, s.pipelines, s.orgs,
			s.evidence, s.evidence_orgs
		FROM tel_ring_sigs s LEFT JOIN tel_aliases a ON a.signature = s.signature
		WHERE s.rollout_id = ? AND s.stage = ? ORDER BY s.signature`, rolloutID, stage)
	if err != nil {
		return t, wrap(err)
	}
	var ring tally.RingSigs
	for rows.Next() {
		var r tally.RingSigRow
		if err := rows.Scan(&r.Raw, &r.ID, &r.Cohort, &r.Counts.Jobs, &r.Counts.Pipelines, &r.Counts.Orgs, &r.Evidence, &r.EvidenceOrgs); err != nil {
			rows.Close()
			return t, wrap(err)
		}
		ring.Add(r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t, wrap(err)
	}
	t.Signatures = ring.Signatures()
	if len(t.Signatures) == 0 {
		return t, nil
	}
	index := ring.Index
	// Templates: from this process's cache (a signature's template never
	// changes), else one lookup per signature, not per cohort row; in
	// bulk when many are missing (the first read of a ring).
	var missing []string
	for id, i := range index {
		if tmpl, ok := db.templates.get(id); ok {
			t.Signatures[i].Template = tmpl
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > templateLookups {
		rows, err = tx.QueryContext(ctx, `SELECT t.signature, t.template FROM tel_templates t
			WHERE t.signature IN (SELECT DISTINCT COALESCE(a.alias_of, s.signature) FROM tel_ring_sigs s
				LEFT JOIN tel_aliases a ON a.signature = s.signature WHERE s.rollout_id = ? AND s.stage = ?)`, rolloutID, stage)
		if err != nil {
			return t, wrap(err)
		}
		for rows.Next() {
			var id, tmpl string
			if err := rows.Scan(&id, &tmpl); err != nil {
				rows.Close()
				return t, wrap(err)
			}
			if i, ok := index[id]; ok {
				t.Signatures[i].Template = tmpl
				db.templates.add(id, tmpl)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return t, wrap(err)
		}
	} else if len(missing) > 0 {
		st, err := tx.PrepareContext(ctx, `SELECT template FROM tel_templates WHERE signature = ?`)
		if err != nil {
			return t, wrap(err)
		}
		defer st.Close()
		for _, id := range missing {
			var tmpl string
			switch err := st.QueryRowContext(ctx, id).Scan(&tmpl); {
			case errors.Is(err, sql.ErrNoRows): // none stored (yet)
			case err != nil:
				return t, wrap(err)
			default:
				t.Signatures[index[id]].Template = tmpl
				db.templates.add(id, tmpl)
			}
		}
	}
	if len(ring.PerOrg) > 0 {
		st, err := tx.PrepareContext(ctx, `SELECT org, fresh FROM tel_ring_sig_orgs
			WHERE rollout_id = ? AND stage = ? AND cohort = ? AND signature = ? AND fresh > 0`)
		if err != nil {
			return t, wrap(err)
		}
		defer st.Close()
		for _, i := range ring.PerOrg {
			byOrg := map[string]int64{}
			for _, raw := range ring.Raws[i] {
				rows, err := st.QueryContext(ctx, rolloutID, stage, rollout.CohortNew, raw)
				if err != nil {
					return t, wrap(err)
				}
				for rows.Next() {
					var org string
					var n int64
					if err := rows.Scan(&org, &n); err != nil {
						rows.Close()
						return t, wrap(err)
					}
					byOrg[org] += n
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return t, wrap(err)
				}
			}
			tally.SetOrgs(&t.Signatures[i], byOrg)
		}
	}

	// Two examples per signature: the new version's first, then the old's.
	// Each version's examples are one range of the primary key, read in
	// its order: no sort, and no lookup per signature.
	for _, v := range []string{version, from} {
		rows, err = tx.QueryContext(ctx, `SELECT signature, message FROM tel_examples
			WHERE label = ? AND version = ? AND slot < 2 ORDER BY signature, slot`, label, v)
		if err != nil {
			return t, wrap(err)
		}
		for rows.Next() {
			var id, msg string
			if err := rows.Scan(&id, &msg); err != nil {
				rows.Close()
				return t, wrap(err)
			}
			if i, ok := index[ring.Surviving(id)]; ok && len(t.Signatures[i].Examples) < 2 && !slices.Contains(t.Signatures[i].Examples, msg) {
				t.Signatures[i].Examples = append(t.Signatures[i].Examples, msg)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return t, wrap(err)
		}
	}
	return t, nil
}

// SignatureTemplates reads the templates of signatures last seen since.
func (db *DB) SignatureTemplates(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT DISTINCT t.template FROM tel_signatures s
		JOIN tel_templates t ON t.signature = s.signature WHERE s.last_seen >= ?`, us(since))
	if err != nil {
		return nil, fmt.Errorf("signature templates: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var tmpl string
		if err := rows.Scan(&tmpl); err != nil {
			return nil, fmt.Errorf("signature templates: %w", err)
		}
		out = append(out, tmpl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signature templates: %w", err)
	}
	return out, nil
}

// ListSignatures pages by (version, signature).
func (db *DB) ListSignatures(ctx context.Context, label, version string, p rollout.Page) ([]rollout.Signature, string, error) {
	after, err := page.AfterKey(p.After, 2)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	// An aliased signature's rows are summed into the surviving one's.
	rows, err := db.rd.QueryContext(ctx, `SELECT g.version, g.id, COALESCE(t.template, ''), g.first_seen, g.last_seen,
			g.jobs, g.pipelines, g.orgs
		FROM (SELECT s.version, COALESCE(a.alias_of, s.signature) AS id, min(s.first_seen) AS first_seen,
				max(s.last_seen) AS last_seen, sum(s.jobs) AS jobs, sum(s.pipelines) AS pipelines, sum(s.orgs) AS orgs
			FROM tel_signatures s LEFT JOIN tel_aliases a ON a.signature = s.signature
			WHERE s.label = ? AND (? = '' OR s.version = ?) AND s.version >= ?
			GROUP BY s.version, id) g
		LEFT JOIN tel_templates t ON t.signature = g.id
		WHERE (g.version, g.id) > (?, ?)
		ORDER BY g.version, g.id LIMIT ?`, label, version, version, after[0], after[0], after[1], n+1)
	if err != nil {
		return nil, "", fmt.Errorf("signatures of %s: %w", label, err)
	}
	var out []rollout.Signature
	for rows.Next() {
		s := rollout.Signature{Label: label}
		var first, last int64
		if err := rows.Scan(&s.Version, &s.ID, &s.Template, &first, &last, &s.Jobs, &s.Pipelines, &s.Orgs); err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("signatures of %s: %w", label, err)
		}
		s.FirstSeen, s.LastSeen = fromUS(first), fromUS(last)
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("signatures of %s: %w", label, err)
	}
	next := ""
	if len(out) > n {
		out = out[:n]
		next = page.KeyCursor(out[n-1].Version, out[n-1].ID)
	}
	if len(out) == 0 {
		return out, "", nil
	}
	idx := map[[2]string]int{}
	for i, s := range out {
		idx[[2]string{s.Version, s.ID}] = i
	}
	first, last := out[0], out[len(out)-1]
	// The surviving id's examples first, then those of ids aliased to it.
	rows, err = db.rd.QueryContext(ctx, `SELECT v, id, message FROM (
			SELECT e.version AS v, COALESCE(a.alias_of, e.signature) AS id, 0 AS part, e.signature AS raw, e.slot AS slot, e.message
			FROM tel_examples e LEFT JOIN tel_aliases a ON a.signature = e.signature
			WHERE e.label = ? AND (e.version, e.signature) >= (?, ?) AND (e.version, e.signature) <= (?, ?)
			UNION ALL
			SELECT e.version, a.alias_of, 1, e.signature, e.slot, e.message FROM tel_aliases a JOIN tel_examples e ON e.signature = a.signature
			WHERE e.label = ? AND a.alias_of >= ? AND a.alias_of <= ? AND e.version >= ? AND e.version <= ?)
		ORDER BY v, id, part, raw, slot`,
		label, first.Version, first.ID, last.Version, last.ID, label, min(first.ID, last.ID), max(first.ID, last.ID), first.Version, last.Version)
	if err != nil {
		return nil, "", fmt.Errorf("signature examples of %s: %w", label, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v, id, msg string
		if err := rows.Scan(&v, &id, &msg); err != nil {
			return nil, "", fmt.Errorf("signature examples of %s: %w", label, err)
		}
		if i, ok := idx[[2]string{v, id}]; ok && len(out[i].Examples) < tally.MaxExamples && !slices.Contains(out[i].Examples, msg) {
			out[i].Examples = append(out[i].Examples, msg)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("signature examples of %s: %w", label, err)
	}
	return out, next, nil
}

// RingHours reads one range of tel_ring_hours' primary key.
func (db *DB) RingHours(ctx context.Context, rolloutID string, stage int) ([]rollout.RingHour, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT cohort, hour, jobs, failed FROM tel_ring_hours
		WHERE rollout_id = ? AND stage = ? ORDER BY hour, cohort`, rolloutID, stage)
	if err != nil {
		return nil, fmt.Errorf("hours of rollout %s ring %d: %w", rolloutID, stage, err)
	}
	defer rows.Close()
	var out []rollout.RingHour
	for rows.Next() {
		var h rollout.RingHour
		var hour int64
		if err := rows.Scan(&h.Cohort, &hour, &h.Jobs, &h.Failed); err != nil {
			return nil, fmt.Errorf("hours of rollout %s ring %d: %w", rolloutID, stage, err)
		}
		h.Hour = time.Unix(hour*3600, 0).UTC()
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hours of rollout %s ring %d: %w", rolloutID, stage, err)
	}
	return out, nil
}

// SignatureHours reads each key's hours, an aliased id's summed in, one
// range of the primary key per stored id.
func (db *DB) SignatureHours(ctx context.Context, label string, keys []rollout.SignatureKey, since time.Time) ([]rollout.SignatureHour, error) {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(x, y rollout.SignatureKey) int {
		return cmp.Or(cmp.Compare(x.Version, y.Version), cmp.Compare(x.ID, y.ID))
	})
	keys = slices.Compact(keys)
	tx, err := db.rd.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("signature hours of %s: %w", label, err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `SELECT hour, sum(jobs) FROM (
			SELECT hour, jobs FROM tel_sig_hours WHERE label = ?1 AND version = ?2 AND signature = ?3 AND hour >= ?4
			UNION ALL
			SELECT h.hour, h.jobs FROM tel_aliases a JOIN tel_sig_hours h ON h.label = ?1 AND h.version = ?2
				AND h.signature = a.signature AND h.hour >= ?4
			WHERE a.alias_of = ?3)
		GROUP BY hour ORDER BY hour`)
	if err != nil {
		return nil, fmt.Errorf("signature hours of %s: %w", label, err)
	}
	defer st.Close()
	var out []rollout.SignatureHour
	from := tally.HourOf(since)
	for _, k := range keys {
		rows, err := st.QueryContext(ctx, label, k.Version, k.ID, from)
		if err != nil {
			return nil, fmt.Errorf("signature hours of %s: %w", label, err)
		}
		for rows.Next() {
			var h, n int64
			if err := rows.Scan(&h, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("signature hours of %s: %w", label, err)
			}
			out = append(out, rollout.SignatureHour{SignatureKey: k, Hour: time.Unix(h*3600, 0).UTC(), Jobs: n})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("signature hours of %s: %w", label, err)
		}
	}
	return out, nil
}

// templateLookups is how many templates RingTelemetry looks up one by
// one; when more are missing it reads the ring's in one query.
var templateLookups = 64

// templateCache remembers signature templates read, in two generations
// so memory stays bounded. A template never changes once stored (rows
// are inserted, never updated), so a cached one is never stale, in any
// process.
type templateCache struct {
	mu       sync.Mutex
	cur, old map[string]string
}

const templateCacheSize = 1 << 15

func (c *templateCache) get(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.cur[id]; ok {
		return t, true
	}
	t, ok := c.old[id]
	return t, ok
}

func (c *templateCache) add(id, tmpl string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || len(c.cur) >= templateCacheSize {
		c.old, c.cur = c.cur, make(map[string]string, 1024)
	}
	c.cur[id] = tmpl
}

// telCache remembers keys of aggregate rows known to be committed (set
// members, full example slots, templates), in two generations so memory
// stays bounded: a forgotten key only costs one redundant insert.
type telCache struct {
	mu       sync.Mutex
	cur, old map[string]struct{}
}

const telCacheSize = 1 << 18

func (c *telCache) has(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[k]; ok {
		return true
	}
	_, ok := c.old[k]
	return ok
}

func (c *telCache) add(keys []string) {
	if len(keys) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if c.cur == nil || len(c.cur) >= telCacheSize {
			c.old, c.cur = c.cur, make(map[string]struct{}, 1024)
		}
		c.cur[k] = struct{}{}
	}
}
