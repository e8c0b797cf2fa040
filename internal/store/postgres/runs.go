package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/batch"
)

// AssignRun keys assignments by run and label: one workflow run may use
// several images. Concurrent calls are group-committed (see package
// batch) without waiting for the WAL flush (see DB.relaxed): a PostgreSQL
// crash may forget the last assignments, which the contract allows.
func (db *DB) AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error) {
	return db.runs.AssignRun(ctx, runID, label, version, now)
}

// runRows writes batch's group commits.
type runRows struct{ db *DB }

var _ batch.Writer = runRows{}

type runKey struct{ run, label string }

// AssignRuns inserts b's new runs in one statement, in key order so that
// concurrent batches (other committers, other replicas) lock the same
// keys in the same order, then reads the versions of those someone else
// stored first: at READ COMMITTED that new statement sees them. Both
// statements commit on their own; each row is first-write-wins by its
// primary key, so the batch need not be one transaction.
func (w runRows) AssignRuns(ctx context.Context, b *batch.Batch) error {
	db := w.db
	first := map[runKey]int{} // index of a key's first assignment in b
	var keys []runKey
	for i, a := range b.Assignments {
		k := runKey{a.RunID, a.Label}
		if _, ok := first[k]; !ok {
			first[k] = i
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].run != keys[j].run {
			return keys[i].run < keys[j].run
		}
		return keys[i].label < keys[j].label
	})
	n := len(keys)
	runs, labels, versions, at := make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
	for i, k := range keys {
		a := b.Assignments[first[k]]
		runs[i], labels[i], versions[i], at[i] = a.RunID, a.Label, a.Version, a.At
	}
	got := make(map[runKey]string, n)
	collect := func(rows pgx.Rows) error {
		var k runKey
		var v string
		_, err := pgx.ForEachRow(rows, []any{&k.run, &k.label, &v}, func() error {
			got[k] = v
			return nil
		})
		return err
	}
	rows, err := db.relaxed.Query(ctx, `INSERT INTO runs (run_id, label, version, assigned_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) ORDER BY 1, 2
		ON CONFLICT DO NOTHING RETURNING run_id, label, version`, runs, labels, versions, at)
	if err == nil {
		err = collect(rows)
	}
	if err != nil {
		return err
	}
	if len(got) < n {
		// Only the runs the INSERT did not return, each a search of the
		// primary key: a LATERAL with LIMIT is not flattened into a
		// join, which a plan cached while runs was small (a new
		// database, before autovacuum's first ANALYZE) made a hash join
		// over a scan of the whole table, some milliseconds a group.
		var missRuns, missLabels []string
		for i, k := range keys {
			if _, ok := got[k]; !ok {
				missRuns, missLabels = append(missRuns, runs[i]), append(missLabels, labels[i])
			}
		}
		rows, err := db.relaxed.Query(ctx, `SELECT k.run_id, k.label, r.version
			FROM unnest($1::text[], $2::text[]) AS k (run_id, label),
			LATERAL (SELECT version FROM runs WHERE run_id = k.run_id AND label = k.label LIMIT 1) AS r`, missRuns, missLabels)
		if err == nil {
			err = collect(rows)
		}
		if err != nil {
			return err
		}
	}
	for i := range b.Assignments {
		a := &b.Assignments[i]
		v, ok := got[runKey{a.RunID, a.Label}]
		if !ok {
			// Forgotten (ForgetRuns, a prune) between the two statements.
			return rollout.ErrRunForgotten(a.RunID, a.Label)
		}
		a.Got = v
	}
	if b.PruneBefore.IsZero() {
		return nil
	}
	if _, err := db.relaxed.Exec(ctx, `DELETE FROM runs WHERE assigned_at < $1`, b.PruneBefore); err != nil {
		return fmt.Errorf("expire old runs: %w", err)
	}
	return nil
}

// ForgetRuns drops label's run assignments.
func (db *DB) ForgetRuns(ctx context.Context, label string) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM runs WHERE label = $1`, label); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("forget runs of %s: %w", label, err)
	}
	return nil
}

// AddServed adds counts into whole-minute buckets (Minute is truncated).
// Like AssignRun it does not wait for the WAL flush: the counts are
// telemetry.
func (db *DB) AddServed(ctx context.Context, counts []rollout.Served) error {
	if len(counts) == 0 {
		return nil
	}
	// Sorted by key: concurrent flushes from several replicas lock the
	// same buckets in the same order.
	sorted := append([]rollout.Served(nil), counts...)
	for i := range sorted {
		sorted[i].Minute = sorted[i].Minute.Truncate(time.Minute)
	}
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Label != b.Label {
			return a.Label < b.Label
		}
		if !a.Minute.Equal(b.Minute) {
			return a.Minute.Before(b.Minute)
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if a.Ring != b.Ring {
			return a.Ring < b.Ring
		}
		return a.Reason < b.Reason
	})
	b := &pgx.Batch{}
	for _, c := range sorted {
		b.Queue(`INSERT INTO served (label, minute, version, ring, reason, count) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (label, minute, version, ring, reason) DO UPDATE SET count = served.count + excluded.count`,
			c.Label, c.Minute, c.Version, c.Ring, c.Reason, c.Count)
	}
	err := pgx.BeginFunc(ctx, db.relaxed, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("add served counts: %w", err)
	}
	return nil
}

// ServedSince sums label's counts per version, ring and reason over the
// minute buckets from the one holding since; Minute is the latest bucket
// summed. Ordered by version, ring, reason.
func (db *DB) ServedSince(ctx context.Context, label string, since time.Time) ([]rollout.Served, error) {
	rows, err := db.pool.Query(ctx, `SELECT version, ring, reason, SUM(count)::bigint, MAX(minute) FROM served
		WHERE label = $1 AND minute >= $2 GROUP BY version, ring, reason ORDER BY version, ring, reason`,
		label, since.Truncate(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("served counts of %s: %w", label, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Served, error) {
		s := rollout.Served{Label: label}
		err := r.Scan(&s.Version, &s.Ring, &s.Reason, &s.Count, &s.Minute)
		s.Minute = utc(s.Minute)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("served counts of %s: %w", label, err)
	}
	return out, nil
}
