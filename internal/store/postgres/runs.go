package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
)

// AssignRun keys assignments by run and label: one workflow run may use
// several images. It commits without waiting for the WAL flush (see
// DB.relaxed): a PostgreSQL crash may forget the last assignments, which
// the contract allows. Assignments older than RunRetention are pruned
// every 1024 new runs.
func (db *DB) AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error) {
	var got string
	err := db.relaxed.QueryRow(ctx, `INSERT INTO runs (run_id, label, version, assigned_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING RETURNING version`, runID, label, version, now).Scan(&got)
	if err == nil {
		if db.assigned.Add(1)%1024 == 0 {
			if _, err := db.relaxed.Exec(ctx, `DELETE FROM runs WHERE assigned_at < $1`, now.Add(-RunRetention)); err != nil {
				return "", fmt.Errorf("expire old runs: %w", err)
			}
		}
		return got, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, err)
	}
	// Someone else's insert won; at READ COMMITTED this new statement
	// sees it.
	if err := db.relaxed.QueryRow(ctx, `SELECT version FROM runs WHERE run_id = $1 AND label = $2`, runID, label).Scan(&got); err != nil {
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, err)
	}
	return got, nil
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
