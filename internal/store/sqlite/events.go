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

// CountJobs aggregates events from the covering index.
func (db *DB) CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (rollout.JobCounts, error) {
	var c rollout.JobCounts
	err := db.rd.QueryRowContext(ctx, `SELECT COUNT(*),
			COALESCE(SUM(outcome = ?), 0), COALESCE(SUM(outcome = ?), 0), COALESCE(SUM(outcome = ?), 0)
		FROM events WHERE label = ? AND version = ? AND (? < 0 OR ring = ?) AND started_at >= ?`,
		rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled,
		label, version, ring, ring, us(since)).Scan(&c.Total, &c.Succeeded, &c.Failed, &c.Canceled)
	if err != nil {
		return c, fmt.Errorf("count jobs of %s %s: %w", label, version, err)
	}
	return c, nil
}
