package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// AppendEvents stores events in one fsynced transaction.
func (db *DB) AppendEvents(ctx context.Context, events []rollout.JobEvent) (int, error) {
	if err := rollout.CheckEvents(events); err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	var added int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO events
			(job_id, org, label, version, ring, outcome, started_at, duration_ms, error_text)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, e := range events {
			res, err := st.ExecContext(ctx, e.JobID, e.Org, e.Label, e.Version, e.Ring, e.Outcome, us(e.StartedAt),
				e.DurationMs, e.ErrorText)
			if err != nil {
				return fmt.Errorf("job %s: %w", e.JobID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			added += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append %d events: %w", len(events), err)
	}
	return int(added), nil
}

// CountJobs aggregates events from the covering index of migration 0012:
// a range of its arrival key (a job started since since has a key at or
// after it), filtered by start.
func (db *DB) CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (rollout.JobCounts, error) {
	var c rollout.JobCounts
	err := db.rd.QueryRowContext(ctx, countJobsSQL, rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled,
		label, version, us(since), ring).Scan(&c.Total, &c.Succeeded, &c.Failed, &c.Canceled)
	if err != nil {
		return c, fmt.Errorf("count jobs of %s %s: %w", label, version, err)
	}
	return c, nil
}

// countJobsSQL is CountJobs' query: outcomes ?1-?3, label, version,
// since, ring.
const countJobsSQL = `SELECT COUNT(*),
		COALESCE(SUM(outcome = ?1), 0), COALESCE(SUM(outcome = ?2), 0), COALESCE(SUM(outcome = ?3), 0)
	FROM events WHERE label = ?4 AND version = ?5 AND max(received_at, started_at) >= ?6 AND (?7 < 0 OR ring = ?7)
		AND started_at >= ?6`
