package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
	"github.com/imagegate/imagegate/internal/store/tally"
)

// AppendObservations writes the events and their aggregates in one
// transaction of one statement per table (arrays unnested server-side).
// Rows of every statement go in key order and the statements in a fixed
// order, counters last (job_minutes, which every batch adds to, last of
// all), so concurrent batches lock rows in one global order and hold the
// hot counter rows only until their commit. Concurrent calls are
// group-committed (package batch): every batch updates the same
// counter rows, so transactions of one batch each mostly wait for each
// other's locks; one transaction for the batches waiting writes each
// counter row once.
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

// maxGroupEvents bounds the events of one group commit.
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
	obs := calls[0].obs
	if len(calls) > 1 {
		obs = nil
		for _, c := range calls {
			obs = append(obs, c.obs...)
		}
	}
	for attempt := 0; ; attempt++ {
		var counted []bool
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			fresh, c, err := insertObservations(ctx, tx, obs)
			if err != nil {
				return err
			}
			if err := applyAliases(ctx, tx, fresh); err != nil {
				return err
			}
			counted = c
			if err := writeTally(ctx, tx, tally.Group(fresh)); err != nil {
				return err
			}
			var minutes tally.Minutes
			for i := range fresh {
				o := &fresh[i]
				minutes.Add(o.Label, o.Version, o.Ring, o.StartedAt, o.Outcome)
			}
			return writeMinutes(ctx, tx, minutes.Rows()) // the hottest counter rows, last
		})
		if isCode(err, deadlockDetected) && attempt < 3 {
			continue // not expected with the lock order above; harmless if it happens
		}
		if err != nil {
			return err
		}
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
}

// applyAliases records the aliases obs carry (PreviousSignature → the
// id that generalised it) and moves every observation reported under an
// aliased id to its surviving one, so that counts continue there.
func applyAliases(ctx context.Context, tx pgx.Tx, obs []rollout.Observation) error {
	seen := map[string]bool{}
	var ids []string
	for i := range obs {
		for _, id := range []string{obs[i].Signature, obs[i].PreviousSignature} {
			if id != "" && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT signature, alias_of FROM tel_aliases WHERE signature = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("signature aliases: %w", err)
	}
	resolved := map[string]string{}
	var from, to string
	if _, err := pgx.ForEachRow(rows, []any{&from, &to}, func() error { resolved[from] = to; return nil }); err != nil {
		return fmt.Errorf("signature aliases: %w", err)
	}
	resolve := func(id string) string {
		if to, ok := resolved[id]; ok {
			return to
		}
		return id
	}
	for i := range obs {
		o := &obs[i]
		if o.PreviousSignature == "" || o.Signature == "" || o.PreviousSignature == o.Signature {
			continue
		}
		to := resolve(o.Signature)
		if resolve(o.PreviousSignature) == to {
			continue // known already, or a cycle: keep what is stored
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tel_aliases (signature, alias_of) VALUES ($1, $2)
			ON CONFLICT (signature) DO UPDATE SET alias_of = excluded.alias_of`, o.PreviousSignature, to); err != nil {
			return fmt.Errorf("signature alias: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE tel_aliases SET alias_of = $1 WHERE alias_of = $2`, to, o.PreviousSignature); err != nil {
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
		if to := resolve(o.Signature); o.Signature != "" && to != o.Signature {
			o.Signature, o.Template = to, ""
		}
	}
	return nil
}

// insertObservations inserts the events and returns those that were new,
// and which of obs they were. Of a job repeated in obs the first is
// inserted and counted (DISTINCT ON by position), so fresh holds the rows
// stored.
func insertObservations(ctx context.Context, tx pgx.Tx, obs []rollout.Observation) ([]rollout.Observation, []bool, error) {
	n := len(obs)
	ids, orgs, labels, versions, outcomes, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	pipes, runs, rollouts, cohorts, sigs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	rings, stages := make([]int32, n), make([]int32, n)
	durations := make([]int64, n)
	started, received := make([]time.Time, n), make([]time.Time, n)
	for i, o := range obs {
		ids[i], orgs[i], labels[i], versions[i], outcomes[i], errs[i] = o.JobID, o.Org, o.Label, o.Version, o.Outcome, o.ErrorText
		pipes[i], runs[i], rollouts[i], cohorts[i], sigs[i] = o.Pipeline, o.RunID, o.RolloutID, o.Cohort, o.Signature
		rings[i], stages[i], durations[i], started[i], received[i] = int32(o.Ring), int32(o.Stage), o.DurationMs, o.StartedAt, o.ReceivedAt
	}
	rows, err := tx.Query(ctx, `INSERT INTO events
		(job_id, org, label, version, ring, outcome, started_at, duration_ms, error_text,
		 pipeline, run_id, received_at, rollout_id, stage, cohort, signature)
		SELECT DISTINCT ON (e.id) e.id, e.org, e.label, e.version, e.ring, e.outcome, e.started, e.dur, e.err,
			e.pipe, e.run, e.recv, e.ro, e.stage, e.cohort, e.sig
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
			$7::timestamptz[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::timestamptz[],
			$13::text[], $14::int[], $15::text[], $16::text[]) WITH ORDINALITY
			AS e(id, org, label, version, ring, outcome, started, dur, err, pipe, run, recv, ro, stage, cohort, sig, pos)
		ORDER BY e.id, e.pos
		ON CONFLICT (job_id) DO NOTHING RETURNING job_id`,
		ids, orgs, labels, versions, rings, outcomes, started, durations, errs, pipes, runs, received, rollouts, stages, cohorts, sigs)
	if err != nil {
		return nil, nil, err
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, err
	}
	isNew := make(map[string]bool, len(stored))
	for _, id := range stored {
		isNew[id] = true
	}
	fresh := make([]rollout.Observation, 0, len(stored))
	counted := make([]bool, len(obs))
	for i, o := range obs {
		if isNew[o.JobID] {
			fresh, counted[i] = append(fresh, o), true
			delete(isNew, o.JobID) // a duplicate in the batch counts once
		}
	}
	return fresh, counted, nil
}

// writeMinutes adds the counts of the events inserted to job_minutes, in
// key order.
func writeMinutes(ctx context.Context, tx pgx.Tx, rows []tally.JobMinute) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	labels, versions := make([]string, n), make([]string, n)
	minutes, total, succeeded, failed, canceled := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	rings := make([]int32, n)
	for i, m := range rows {
		labels[i], versions[i], minutes[i], rings[i] = m.Label, m.Version, m.Minute, int32(m.Ring)
		total[i], succeeded[i], failed[i], canceled[i] = m.Total, m.Succeeded, m.Failed, m.Canceled
	}
	if _, err := tx.Exec(ctx, `INSERT INTO job_minutes AS j (label, version, minute, ring, total, succeeded, failed, canceled)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
		ORDER BY 1, 2, 3, 4
		ON CONFLICT (label, version, minute, ring) DO UPDATE SET total = j.total + excluded.total,
			succeeded = j.succeeded + excluded.succeeded, failed = j.failed + excluded.failed, canceled = j.canceled + excluded.canceled`,
		labels, versions, minutes, rings, total, succeeded, failed, canceled); err != nil {
		return fmt.Errorf("job minutes: %w", err)
	}
	return nil
}

type ringSigKey struct {
	tally.Ring
	sig string
}

type versionSigKey struct{ label, version, sig string }

// writeTally writes b's rows. History goes first, so that the evidence
// judged in the same batch sees it (a backfilled job in the batch counts).
func writeTally(ctx context.Context, tx pgx.Tx, b tally.Batch) error {
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
		n := len(b.History)
		ls, ps, ss, vs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		fs, las := make([]time.Time, n), make([]time.Time, n)
		js := make([]int64, n)
		delta := make(map[[4]string]tally.History, n)
		for i, h := range b.History {
			ls[i], ps[i], ss[i], vs[i], fs[i], las[i], js[i] = h.Label, h.Pipeline, h.Signature, h.Version, h.First, h.Last, h.Jobs
			delta[[4]string{h.Label, h.Pipeline, h.Signature, h.Version}] = h
		}
		rows, err := tx.Query(ctx, `INSERT INTO tel_history AS h (label, pipeline, signature, version, first_seen, last_seen, jobs)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::bigint[])
			ORDER BY 1, 2, 3, 4
			ON CONFLICT (label, pipeline, signature, version) DO UPDATE SET first_seen = least(h.first_seen, excluded.first_seen),
				last_seen = greatest(h.last_seen, excluded.last_seen), jobs = h.jobs + excluded.jobs
			RETURNING label, pipeline, signature, version, jobs, first_seen`, ls, ps, ss, vs, fs, las, js)
		if err != nil {
			return fmt.Errorf("signature history: %w", err)
		}
		var k [4]string
		var jobs int64
		var first time.Time
		_, err = pgx.ForEachRow(rows, []any{&k[0], &k[1], &k[2], &k[3], &jobs, &first}, func() error {
			h := delta[k]
			if jobs == h.Jobs { // nothing was there before
				bump(versionSigKey{k[0], k[3], k[2]}, 0)
			}
			if first.Equal(h.First.Truncate(time.Microsecond)) {
				lowered = append(lowered, h)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("signature history: %w", err)
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
		return err
	}

	expNew := map[tally.Ring]*[2]int64{}
	sigNew := map[ringSigKey]*[2]int64{}
	var candidates []tally.RingMember  // new control/old signature pipelines: evidence unless history
	freshOrgs := map[[5]string]int64{} // new cohort's fresh pipelines per rollout, stage, signature, org
	if len(b.RingMembers) > 0 {
		n := len(b.RingMembers)
		rs, cs, ss, ks, ms, os := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		st := make([]int32, n)
		for i, m := range b.RingMembers {
			rs[i], st[i], cs[i], ss[i], ks[i], ms[i], os[i] = m.RolloutID, int32(m.Stage), m.Cohort, m.Signature, m.Kind, m.Member, m.Org
		}
		// A new cohort's signature pipeline is judged as it is inserted:
		// fresh unless the pipeline produced the signature on another
		// version before the rollout was created.
		rows, err := tx.Query(ctx, `INSERT INTO tel_ring_members (rollout_id, stage, cohort, signature, kind, member, org, fresh)
			SELECT u.r, u.st, u.co, u.s, u.k, u.m, u.o, CASE WHEN u.co = $8 AND u.s <> '' AND u.k = $9 AND NOT EXISTS (
				SELECT 1 FROM rollouts ro JOIN tel_history h ON h.label = ro.label AND h.pipeline = u.m
					AND h.signature = ANY(ARRAY(SELECT u.s UNION ALL SELECT signature FROM tel_aliases WHERE alias_of = u.s))
					AND h.version <> ro.version AND h.first_seen < ro.created_at WHERE ro.id = u.r) THEN 1 ELSE 0 END
			FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS u(r, st, co, s, k, m, o)
			ORDER BY 1, 2, 3, 4, 5, 6
			ON CONFLICT DO NOTHING RETURNING rollout_id, stage, cohort, signature, kind, member, org, fresh`,
			rs, st, cs, ss, ks, ms, os, rollout.CohortNew, tally.KindPipeline)
		if err != nil {
			return fmt.Errorf("ring members: %w", err)
		}
		var m tally.RingMember
		var fresh int
		_, err = pgx.ForEachRow(rows, []any{&m.RolloutID, &m.Stage, &m.Cohort, &m.Signature, &m.Kind, &m.Member, &m.Org, &fresh}, func() error {
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
				if fresh == 1 {
					freshOrgs[[5]string{m.RolloutID, strconv.Itoa(m.Stage), m.Cohort, m.Signature, m.Org}]++
				}
			} else {
				c[1]++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("ring members: %w", err)
		}
	}
	if len(freshOrgs) > 0 {
		keys := slices.SortedFunc(maps.Keys(freshOrgs), func(x, y [5]string) int { return slices.Compare(x[:], y[:]) })
		n := len(keys)
		rs, cs, ss, os := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		st := make([]int32, n)
		ds := make([]int64, n)
		for i, k := range keys {
			stage, _ := strconv.Atoi(k[1])
			rs[i], st[i], cs[i], ss[i], os[i], ds[i] = k[0], int32(stage), k[2], k[3], k[4], freshOrgs[k]
		}
		rows, err := tx.Query(ctx, `INSERT INTO tel_ring_sig_orgs AS t (rollout_id, stage, cohort, signature, org, fresh)
			SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[]) ORDER BY 1, 2, 3, 4, 5
			ON CONFLICT (rollout_id, stage, cohort, signature, org) DO UPDATE SET fresh = t.fresh + excluded.fresh
			RETURNING rollout_id, stage, cohort, signature, org, fresh`, rs, st, cs, ss, os, ds)
		if err != nil {
			return fmt.Errorf("signature evidence: %w", err)
		}
		var k ringSigKey
		var org string
		var now int64
		_, err = pgx.ForEachRow(rows, []any{&k.RolloutID, &k.Stage, &k.Cohort, &k.sig, &org, &now}, func() error {
			d := freshOrgs[[5]string{k.RolloutID, strconv.Itoa(k.Stage), k.Cohort, k.sig, org}]
			addEvidence(k, d, b2i64(now == d))
			return nil
		})
		if err != nil {
			return fmt.Errorf("signature evidence: %w", err)
		}
	}
	if len(candidates) > 0 {
		// After the batch's history: a backfilled job in it counts.
		n := len(candidates)
		rs, cs, ss, ps := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		st := make([]int32, n)
		for i, m := range candidates {
			rs[i], st[i], cs[i], ss[i], ps[i] = m.RolloutID, int32(m.Stage), m.Cohort, m.Signature, m.Member
		}
		rows, err := tx.Query(ctx, `SELECT c.r, c.st, c.co, c.s, count(*) FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[]) AS c(r, st, co, s, p)
			JOIN rollouts ro ON ro.id = c.r
			WHERE NOT EXISTS (SELECT 1 FROM tel_history h WHERE h.label = ro.label AND h.pipeline = c.p
				AND h.signature = ANY(ARRAY(SELECT c.s UNION ALL SELECT signature FROM tel_aliases WHERE alias_of = c.s))
				AND h.version <> ro.version AND h.first_seen < ro.created_at)
			GROUP BY 1, 2, 3, 4`, rs, st, cs, ss, ps)
		if err != nil {
			return fmt.Errorf("signature evidence: %w", err)
		}
		var k ringSigKey
		var cnt int64
		_, err = pgx.ForEachRow(rows, []any{&k.RolloutID, &k.Stage, &k.Cohort, &k.sig, &cnt}, func() error { addEvidence(k, cnt, 0); return nil })
		if err != nil {
			return fmt.Errorf("signature evidence: %w", err)
		}
	}
	if len(b.VersionOrgs) > 0 {
		n := len(b.VersionOrgs)
		ls, vs, ss, os := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, o := range b.VersionOrgs {
			ls[i], vs[i], ss[i], os[i] = o.Label, o.Version, o.Signature, o.Org
		}
		rows, err := tx.Query(ctx, `INSERT INTO tel_version_orgs (label, version, signature, org)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ORDER BY 1, 2, 3, 4
			ON CONFLICT DO NOTHING RETURNING label, version, signature`, ls, vs, ss, os)
		if err != nil {
			return fmt.Errorf("signature orgs: %w", err)
		}
		var k versionSigKey
		_, err = pgx.ForEachRow(rows, []any{&k.label, &k.version, &k.sig}, func() error { bump(k, 1); return nil })
		if err != nil {
			return fmt.Errorf("signature orgs: %w", err)
		}
	}
	if len(b.Examples) > 0 {
		n := len(b.Examples)
		ls, vs, ss, ms := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, e := range b.Examples {
			ls[i], vs[i], ss[i], ms[i] = e.Label, e.Version, e.Signature, e.Message
		}
		// The slot after those taken; the key's slot bound caps them at
		// three even when two batches race for the same slot.
		if _, err := tx.Exec(ctx, `INSERT INTO tel_examples (label, version, signature, slot, message)
			SELECT l, v, s, slot, m FROM (
				SELECT u.l, u.v, u.s, u.m,
					(SELECT count(*) FROM tel_examples e WHERE e.label = u.l AND e.version = u.v AND e.signature = u.s)
						+ row_number() OVER (PARTITION BY u.l, u.v, u.s ORDER BY u.ord) - 1 AS slot
				FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(l, v, s, m, ord)
				WHERE NOT EXISTS (SELECT 1 FROM tel_examples e
					WHERE e.label = u.l AND e.version = u.v AND e.signature = u.s AND e.message = u.m)
			) x WHERE slot < 3 ORDER BY 1, 2, 3, 4
			ON CONFLICT DO NOTHING`, ls, vs, ss, ms); err != nil {
			return fmt.Errorf("examples: %w", err)
		}
	}
	if len(b.Templates) > 0 {
		n := len(b.Templates)
		ss, ts := make([]string, n), make([]string, n)
		for i, t := range b.Templates {
			ss[i], ts[i] = t.Signature, t.Template
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tel_templates (signature, template)
			SELECT * FROM unnest($1::text[], $2::text[]) ORDER BY 1 ON CONFLICT DO NOTHING`, ss, ts); err != nil {
			return fmt.Errorf("templates: %w", err)
		}
	}

	if len(b.VersionSigs) > 0 {
		n := len(b.VersionSigs)
		ls, vs, ss := make([]string, n), make([]string, n), make([]string, n)
		fs, las := make([]time.Time, n), make([]time.Time, n)
		js, ps, os := make([]int64, n), make([]int64, n), make([]int64, n)
		for i, v := range b.VersionSigs {
			ls[i], vs[i], ss[i], fs[i], las[i], js[i] = v.Label, v.Version, v.Signature, v.First, v.Last, v.Jobs
			if c := vNew[versionSigKey{v.Label, v.Version, v.Signature}]; c != nil {
				ps[i], os[i] = c[0], c[1]
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tel_signatures AS t (label, version, signature, first_seen, last_seen, jobs, pipelines, orgs)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bigint[], $7::bigint[], $8::bigint[])
			ORDER BY 1, 2, 3
			ON CONFLICT (label, version, signature) DO UPDATE SET first_seen = least(t.first_seen, excluded.first_seen),
				last_seen = greatest(t.last_seen, excluded.last_seen), jobs = t.jobs + excluded.jobs,
				pipelines = t.pipelines + excluded.pipelines, orgs = t.orgs + excluded.orgs`, ls, vs, ss, fs, las, js, ps, os); err != nil {
			return fmt.Errorf("version signatures: %w", err)
		}
	}
	if len(b.RingSigs) > 0 {
		n := len(b.RingSigs)
		rs, cs, ss := make([]string, n), make([]string, n), make([]string, n)
		st := make([]int32, n)
		js, ps, os, es, eos := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, s := range b.RingSigs {
			k := ringSigKey{s.Ring, s.Signature}
			rs[i], st[i], cs[i], ss[i], js[i] = s.RolloutID, int32(s.Stage), s.Cohort, s.Signature, s.Jobs
			if c := sigNew[k]; c != nil {
				ps[i], os[i] = c[0], c[1]
			}
			if ev := evidence[k]; ev != nil {
				es[i], eos[i] = ev[0], ev[1]
				delete(evidence, k)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tel_ring_sigs AS t (rollout_id, stage, cohort, signature, jobs, pipelines, orgs, evidence, evidence_orgs)
			SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
			ORDER BY 1, 2, 3, 4
			ON CONFLICT (rollout_id, stage, cohort, signature) DO UPDATE SET jobs = t.jobs + excluded.jobs,
				pipelines = t.pipelines + excluded.pipelines, orgs = t.orgs + excluded.orgs, evidence = t.evidence + excluded.evidence,
				evidence_orgs = t.evidence_orgs + excluded.evidence_orgs`,
			rs, st, cs, ss, js, ps, os, es, eos); err != nil {
			return fmt.Errorf("ring signatures: %w", err)
		}
	}
	if len(evidence) > 0 {
		// Evidence taken away by backfilled history, in rings this batch
		// has no job of.
		keys := slices.SortedFunc(maps.Keys(evidence), func(x, y ringSigKey) int {
			return cmp.Or(cmp.Compare(x.RolloutID, y.RolloutID), cmp.Compare(x.Stage, y.Stage), cmp.Compare(x.Cohort, y.Cohort), cmp.Compare(x.sig, y.sig))
		})
		n := len(keys)
		rs, cs, ss := make([]string, n), make([]string, n), make([]string, n)
		st := make([]int32, n)
		es, eos := make([]int64, n), make([]int64, n)
		for i, k := range keys {
			rs[i], st[i], cs[i], ss[i], es[i], eos[i] = k.RolloutID, int32(k.Stage), k.Cohort, k.sig, evidence[k][0], evidence[k][1]
		}
		if _, err := tx.Exec(ctx, `UPDATE tel_ring_sigs t SET evidence = t.evidence + u.e, evidence_orgs = t.evidence_orgs + u.eo
			FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) AS u(r, st, co, s, e, eo)
			WHERE t.rollout_id = u.r AND t.stage = u.st AND t.cohort = u.co AND t.signature = u.s`, rs, st, cs, ss, es, eos); err != nil {
			return fmt.Errorf("ring signatures: %w", err)
		}
	}
	if len(b.SigHours) > 0 {
		n := len(b.SigHours)
		ls, vs, ss := make([]string, n), make([]string, n), make([]string, n)
		hs, js := make([]int64, n), make([]int64, n)
		for i, h := range b.SigHours {
			ls[i], vs[i], ss[i], hs[i], js[i] = h.Label, h.Version, h.Signature, h.Hour, h.Jobs
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tel_sig_hours AS t (label, version, signature, hour, jobs)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
			ORDER BY 1, 2, 3, 4
			ON CONFLICT (label, version, signature, hour) DO UPDATE SET jobs = t.jobs + excluded.jobs`,
			ls, vs, ss, hs, js); err != nil {
			return fmt.Errorf("signature hours: %w", err)
		}
	}
	if len(b.RingHours) > 0 {
		n := len(b.RingHours)
		rs, cs := make([]string, n), make([]string, n)
		st := make([]int32, n)
		hs, js, fs := make([]int64, n), make([]int64, n), make([]int64, n)
		for i, h := range b.RingHours {
			rs[i], st[i], cs[i], hs[i], js[i], fs[i] = h.RolloutID, int32(h.Stage), h.Cohort, h.Hour, h.Jobs, h.Failed
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tel_ring_hours AS t (rollout_id, stage, cohort, hour, jobs, failed)
			SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
			ORDER BY 1, 2, 4, 3
			ON CONFLICT (rollout_id, stage, hour, cohort) DO UPDATE SET jobs = t.jobs + excluded.jobs, failed = t.failed + excluded.failed`,
			rs, st, cs, hs, js, fs); err != nil {
			return fmt.Errorf("ring hours: %w", err)
		}
	}
	if len(b.OrgDays) > 0 {
		n := len(b.OrgDays)
		ls, vs, os := make([]string, n), make([]string, n), make([]string, n)
		ds, js, fs := make([]int64, n), make([]int64, n), make([]int64, n)
		for i, d := range b.OrgDays {
			ls[i], vs[i], os[i], ds[i], js[i], fs[i] = d.Label, d.Version, d.Org, d.Day, d.Jobs, d.Failed
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tel_org_days AS t (label, version, org, day, jobs, failed)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
			ORDER BY 1, 2, 3, 4
			ON CONFLICT (label, version, org, day) DO UPDATE SET jobs = t.jobs + excluded.jobs, failed = t.failed + excluded.failed`,
			ls, vs, os, ds, js, fs); err != nil {
			return fmt.Errorf("org days: %w", err)
		}
	}
	if len(b.RingOrgs) > 0 {
		n := len(b.RingOrgs)
		rs, cs, os := make([]string, n), make([]string, n), make([]string, n)
		st := make([]int32, n)
		fs := make([]int64, n)
		for i, o := range b.RingOrgs {
			rs[i], st[i], cs[i], os[i], fs[i] = o.RolloutID, int32(o.Stage), o.Cohort, o.Org, o.Failed
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tel_ring_orgs AS t (rollout_id, stage, cohort, org, failed)
			SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::bigint[])
			ORDER BY 1, 2, 3, 4
			ON CONFLICT (rollout_id, stage, cohort, org) DO UPDATE SET failed = t.failed + excluded.failed`,
			rs, st, cs, os, fs); err != nil {
			return fmt.Errorf("ring orgs: %w", err)
		}
	}
	if len(b.Exposure) > 0 {
		n := len(b.Exposure)
		rs, cs := make([]string, n), make([]string, n)
		st := make([]int32, n)
		js, fs, ps, os := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, e := range b.Exposure {
			rs[i], st[i], cs[i], js[i], fs[i] = e.RolloutID, int32(e.Stage), e.Cohort, e.Jobs, e.Failed
			if c := expNew[e.Ring]; c != nil {
				ps[i], os[i] = c[0], c[1]
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tel_exposure AS t (rollout_id, stage, cohort, jobs, failed, pipelines, orgs)
			SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
			ORDER BY 1, 2, 3
			ON CONFLICT (rollout_id, stage, cohort) DO UPDATE SET jobs = t.jobs + excluded.jobs, failed = t.failed + excluded.failed,
				pipelines = t.pipelines + excluded.pipelines, orgs = t.orgs + excluded.orgs`, rs, st, cs, js, fs, ps, os); err != nil {
			return fmt.Errorf("exposure: %w", err)
		}
	}
	return nil
}

// unfreshen clears the fresh mark of the new cohort's signature pipelines
// that history in lowered (rows whose first_seen this batch set or
// lowered) gives a past: the pipeline produced the signature on another
// version before their rollout was created. For live events no rollout
// was created after them, and the statement finds nothing at once.
func unfreshen(ctx context.Context, tx pgx.Tx, lowered []tally.History, add func(k ringSigKey, pipes, orgs int64)) error {
	if len(lowered) == 0 {
		return nil
	}
	n := len(lowered)
	ls, ps, ss, vs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	fs := make([]time.Time, n)
	for i, h := range lowered {
		ls[i], ps[i], ss[i], vs[i], fs[i] = h.Label, h.Pipeline, h.Signature, h.Version, h.First
	}
	rows, err := tx.Query(ctx, `WITH c AS (
			SELECT ro.id AS r, c.p, c.s FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS c(l, p, s, v, f)
			JOIN rollouts ro ON ro.label = c.l AND ro.version <> c.v AND ro.created_at > c.f),
		m AS (UPDATE tel_ring_members m SET fresh = 0 FROM c
			WHERE m.rollout_id = c.r AND m.stage IN (SELECT stage FROM rollout_stages WHERE rollout_id = c.r)
				AND m.cohort = $6 AND m.signature = c.s AND m.kind = $7 AND m.member = c.p AND m.fresh = 1
			RETURNING m.rollout_id, m.stage, m.signature, m.org),
		d AS (SELECT rollout_id, stage, signature, org, count(*) AS n FROM m GROUP BY 1, 2, 3, 4)
		UPDATE tel_ring_sig_orgs t SET fresh = t.fresh - d.n FROM d
		WHERE t.rollout_id = d.rollout_id AND t.stage = d.stage AND t.cohort = $6 AND t.signature = d.signature AND t.org = d.org
		RETURNING t.rollout_id, t.stage, t.signature, d.n, t.fresh`, ls, ps, ss, vs, fs, rollout.CohortNew, tally.KindPipeline)
	if err != nil {
		return fmt.Errorf("backfilled history: %w", err)
	}
	k := ringSigKey{Ring: tally.Ring{Cohort: rollout.CohortNew}}
	var gone, left int64
	_, err = pgx.ForEachRow(rows, []any{&k.RolloutID, &k.Stage, &k.sig, &gone, &left}, func() error {
		add(k, -gone, -b2i64(left == 0))
		return nil
	})
	if err != nil {
		return fmt.Errorf("backfilled history: %w", err)
	}
	return nil
}

func b2i64(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// RolloutStages reads the stages migration 0004's trigger wrote.
func (db *DB) RolloutStages(ctx context.Context, rolloutID string) ([]rollout.Stage, error) {
	rows, err := db.pool.Query(ctx, `SELECT stage, started_at FROM rollout_stages WHERE rollout_id = $1 ORDER BY stage`, rolloutID)
	if err != nil {
		return nil, fmt.Errorf("stages of rollout %s: %w", rolloutID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Stage, error) {
		var s rollout.Stage
		err := r.Scan(&s.Ring, &s.StartedAt)
		s.StartedAt = s.StartedAt.UTC()
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("stages of rollout %s: %w", rolloutID, err)
	}
	return out, nil
}

// RingTelemetry reads the aggregates of one ring in one REPEATABLE READ
// snapshot.
func (db *DB) RingTelemetry(ctx context.Context, rolloutID string, stage int) (rollout.Telemetry, error) {
	t := rollout.Telemetry{RolloutID: rolloutID, Stage: stage, Exposure: map[string]rollout.Exposure{}}
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var label, version, from string
		var created time.Time
		err := tx.QueryRow(ctx, `SELECT label, version, from_version, created_at FROM rollouts WHERE id = $1`, rolloutID).
			Scan(&label, &version, &from, &created)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("rollout %s: %w", rolloutID, rollout.ErrNotFound)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT cohort, jobs, failed, pipelines, orgs FROM tel_exposure WHERE rollout_id = $1 AND stage = $2`, rolloutID, stage)
		if err != nil {
			return err
		}
		var c string
		var e rollout.Exposure
		if _, err := pgx.ForEachRow(rows, []any{&c, &e.Jobs, &e.Failed, &e.Pipelines, &e.Orgs}, func() error {
			t.Exposure[c] = e
			return nil
		}); err != nil {
			return err
		}

		rows, err = tx.Query(ctx, `SELECT cohort, failed FROM tel_ring_orgs WHERE rollout_id = $1 AND stage = $2 AND failed > 0`, rolloutID, stage)
		if err != nil {
			return err
		}
		failedBy := map[string][]int64{}
		var failed int64
		if _, err := pgx.ForEachRow(rows, []any{&c, &failed}, func() error {
			failedBy[c] = append(failedBy[c], failed)
			return nil
		}); err != nil {
			return err
		}
		for c, counts := range failedBy {
			if e, ok := t.Exposure[c]; ok {
				e.FailedOrgs, e.TopOrgFailed = int64(len(counts)), tally.Top(counts, rollout.MaxTopOrgs)
				t.Exposure[c] = e
			}
		}
		if from != "" && len(t.Exposure) > 0 {
			// Two scans summed here rather than a join that seeks each
			// member org's days: every org is a member of several cohorts.
			rows, err = tx.Query(ctx, `SELECT org, sum(jobs)::bigint, sum(failed)::bigint FROM tel_org_days
				WHERE label = $1 AND version = $2 AND day <= $3 GROUP BY org`, label, from, tally.DayOf(created))
			if err != nil {
				return err
			}
			hist := map[string][2]int64{}
			var org string
			var jobs int64
			if _, err := pgx.ForEachRow(rows, []any{&org, &jobs, &failed}, func() error {
				hist[org] = [2]int64{jobs, failed}
				return nil
			}); err != nil {
				return err
			}
			if len(hist) > 0 {
				cohorts := slices.Collect(maps.Keys(t.Exposure))
				rows, err = tx.Query(ctx, `SELECT cohort, member FROM tel_ring_members
					WHERE rollout_id = $1 AND stage = $2 AND cohort = ANY($3) AND signature = '' AND kind = $4`,
					rolloutID, stage, cohorts, tally.KindOrg)
				if err != nil {
					return err
				}
				if _, err := pgx.ForEachRow(rows, []any{&c, &org}, func() error {
					e := t.Exposure[c]
					h := hist[org]
					e.HistoryJobs += h[0]
					e.HistoryFailed += h[1]
					t.Exposure[c] = e
					return nil
				}); err != nil {
					return err
				}
			}
		}

		// A signature aliased to another (its template generalised) counts
		// as the surviving one: its rows are summed into it.
		rows, err = tx.Query(ctx, `SELECT s.signature, COALESCE(a.alias_of, s.signature), s.cohort, s.jobs, s.pipelines, s.orgs,
				s.evidence, s.evidence_orgs
			FROM tel_ring_sigs s LEFT JOIN tel_aliases a ON a.signature = s.signature
			WHERE s.rollout_id = $1 AND s.stage = $2 ORDER BY s.signature`, rolloutID, stage)
		if err != nil {
			return err
		}
		var ring tally.RingSigs
		var r tally.RingSigRow
		if _, err := pgx.ForEachRow(rows, []any{&r.Raw, &r.ID, &r.Cohort, &r.Counts.Jobs, &r.Counts.Pipelines, &r.Counts.Orgs, &r.Evidence, &r.EvidenceOrgs}, func() error {
			ring.Add(r)
			return nil
		}); err != nil {
			return err
		}
		t.Signatures = ring.Signatures()
		if len(t.Signatures) == 0 {
			return nil
		}
		index := ring.Index
		// Templates: one lookup per signature, not per cohort row.
		var id, tmpl string
		rows, err = tx.Query(ctx, `SELECT t.signature, t.template FROM tel_templates t
			WHERE t.signature IN (SELECT DISTINCT COALESCE(a.alias_of, s.signature) FROM tel_ring_sigs s
				LEFT JOIN tel_aliases a ON a.signature = s.signature WHERE s.rollout_id = $1 AND s.stage = $2)`, rolloutID, stage)
		if err != nil {
			return err
		}
		if _, err := pgx.ForEachRow(rows, []any{&id, &tmpl}, func() error {
			if i, ok := index[id]; ok {
				t.Signatures[i].Template = tmpl
			}
			return nil
		}); err != nil {
			return err
		}
		if len(ring.PerOrg) > 0 {
			var raws []string
			for _, i := range ring.PerOrg {
				raws = append(raws, ring.Raws[i]...)
			}
			rows, err = tx.Query(ctx, `SELECT signature, org, fresh FROM tel_ring_sig_orgs
				WHERE rollout_id = $1 AND stage = $2 AND cohort = $3 AND signature = ANY($4) AND fresh > 0`,
				rolloutID, stage, rollout.CohortNew, raws)
			if err != nil {
				return err
			}
			byOrg := map[int]map[string]int64{}
			var org string
			var n int64
			if _, err := pgx.ForEachRow(rows, []any{&id, &org, &n}, func() error {
				if i, ok := index[ring.Surviving(id)]; ok {
					if byOrg[i] == nil {
						byOrg[i] = map[string]int64{}
					}
					byOrg[i][org] += n
				}
				return nil
			}); err != nil {
				return err
			}
			for _, i := range ring.PerOrg {
				tally.SetOrgs(&t.Signatures[i], byOrg[i])
			}
		}

		// The new version's examples first, then the old's: each a range
		// of the primary key in its order.
		var msg string
		for _, v := range []string{version, from} {
			rows, err = tx.Query(ctx, `SELECT signature, message FROM tel_examples
				WHERE label = $1 AND version = $2 AND slot < 2 ORDER BY signature, slot`, label, v)
			if err != nil {
				return err
			}
			if _, err := pgx.ForEachRow(rows, []any{&id, &msg}, func() error {
				if i, ok := index[ring.Surviving(id)]; ok && len(t.Signatures[i].Examples) < 2 && !slices.Contains(t.Signatures[i].Examples, msg) {
					t.Signatures[i].Examples = append(t.Signatures[i].Examples, msg)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return err
	})
	if err != nil {
		return t, fmt.Errorf("telemetry of rollout %s ring %d: %w", rolloutID, stage, err)
	}
	return t, nil
}

// SignatureTemplates reads the templates of signatures last seen since.
func (db *DB) SignatureTemplates(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT t.template FROM tel_signatures s
		JOIN tel_templates t ON t.signature = s.signature WHERE s.last_seen >= $1`, since)
	if err != nil {
		return nil, fmt.Errorf("signature templates: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
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
	rows, err := db.pool.Query(ctx, `SELECT g.version, g.id, COALESCE(t.template, ''), g.first_seen, g.last_seen,
			g.jobs, g.pipelines, g.orgs
		FROM (SELECT s.version, COALESCE(a.alias_of, s.signature) AS id, min(s.first_seen) AS first_seen,
				max(s.last_seen) AS last_seen, sum(s.jobs)::bigint AS jobs, sum(s.pipelines)::bigint AS pipelines, sum(s.orgs)::bigint AS orgs
			FROM tel_signatures s LEFT JOIN tel_aliases a ON a.signature = s.signature
			WHERE s.label = $1 AND ($2 = '' OR s.version = $2) AND s.version >= $3
			GROUP BY 1, 2) g
		LEFT JOIN tel_templates t ON t.signature = g.id
		WHERE (g.version, g.id) > ($3, $4)
		ORDER BY g.version, g.id LIMIT $5`, label, version, after[0], after[1], n+1)
	if err != nil {
		return nil, "", fmt.Errorf("signatures of %s: %w", label, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Signature, error) {
		s := rollout.Signature{Label: label}
		err := r.Scan(&s.Version, &s.ID, &s.Template, &s.FirstSeen, &s.LastSeen, &s.Jobs, &s.Pipelines, &s.Orgs)
		s.FirstSeen, s.LastSeen = s.FirstSeen.UTC(), s.LastSeen.UTC()
		return s, err
	})
	if err != nil {
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
	rows, err = db.pool.Query(ctx, `SELECT v, id, message FROM (
			SELECT e.version AS v, COALESCE(a.alias_of, e.signature) AS id, 0 AS part, e.signature AS raw, e.slot, e.message
			FROM tel_examples e LEFT JOIN tel_aliases a ON a.signature = e.signature
			WHERE e.label = $1 AND (e.version, e.signature) >= ($2, $3) AND (e.version, e.signature) <= ($4, $5)
			UNION ALL
			SELECT e.version, a.alias_of, 1, e.signature, e.slot, e.message FROM tel_aliases a JOIN tel_examples e ON e.signature = a.signature
			WHERE e.label = $1 AND a.alias_of >= least($3, $5) AND a.alias_of <= greatest($3, $5) AND e.version >= $2 AND e.version <= $4) x
		ORDER BY v, id, part, raw, slot`, label, first.Version, first.ID, last.Version, last.ID)
	if err != nil {
		return nil, "", fmt.Errorf("signature examples of %s: %w", label, err)
	}
	var v, id, msg string
	if _, err := pgx.ForEachRow(rows, []any{&v, &id, &msg}, func() error {
		if i, ok := idx[[2]string{v, id}]; ok && len(out[i].Examples) < tally.MaxExamples && !slices.Contains(out[i].Examples, msg) {
			out[i].Examples = append(out[i].Examples, msg)
		}
		return nil
	}); err != nil {
		return nil, "", fmt.Errorf("signature examples of %s: %w", label, err)
	}
	return out, next, nil
}

// RingHours reads one range of tel_ring_hours' primary key.
func (db *DB) RingHours(ctx context.Context, rolloutID string, stage int) ([]rollout.RingHour, error) {
	rows, err := db.pool.Query(ctx, `SELECT cohort, hour, jobs, failed FROM tel_ring_hours
		WHERE rollout_id = $1 AND stage = $2 ORDER BY hour, cohort`, rolloutID, stage)
	if err != nil {
		return nil, fmt.Errorf("hours of rollout %s ring %d: %w", rolloutID, stage, err)
	}
	var out []rollout.RingHour
	var h rollout.RingHour
	var hour int64
	if _, err := pgx.ForEachRow(rows, []any{&h.Cohort, &hour, &h.Jobs, &h.Failed}, func() error {
		h.Hour = time.Unix(hour*3600, 0).UTC()
		out = append(out, h)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("hours of rollout %s ring %d: %w", rolloutID, stage, err)
	}
	return out, nil
}

// SignatureHours reads every key's hours in one statement, an aliased
// id's summed in.
func (db *DB) SignatureHours(ctx context.Context, label string, keys []rollout.SignatureKey, since time.Time) ([]rollout.SignatureHour, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	vs, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		vs[i], ids[i] = k.Version, k.ID
	}
	rows, err := db.pool.Query(ctx, `SELECT k.v, k.id, h.hour, sum(h.jobs)::bigint
		FROM (SELECT DISTINCT * FROM unnest($2::text[], $3::text[]) AS k(v, id)) k
		JOIN tel_sig_hours h ON h.label = $1 AND h.version = k.v AND h.hour >= $4
			AND (h.signature = k.id OR h.signature IN (SELECT signature FROM tel_aliases WHERE alias_of = k.id))
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, label, vs, ids, tally.HourOf(since))
	if err != nil {
		return nil, fmt.Errorf("signature hours of %s: %w", label, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.SignatureHour, error) {
		var h rollout.SignatureHour
		var hour int64
		err := r.Scan(&h.Version, &h.ID, &hour, &h.Jobs)
		h.Hour = time.Unix(hour*3600, 0).UTC()
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("signature hours of %s: %w", label, err)
	}
	return out, nil
}
