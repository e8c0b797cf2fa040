package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/tally"
)

// AppendEvents stores events in one fsynced transaction, with their
// job_minutes.
func (db *DB) AppendEvents(ctx context.Context, events []rollout.JobEvent) (int, error) {
	if err := rollout.CheckEvents(events); err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	var added int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		added = 0
		st, err := tx.PrepareContext(ctx, `INSERT INTO events
			(job_id, org, label, version, ring, outcome, started_at, duration_ms, error_text)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		var minutes tally.Minutes
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
			if n == 1 { // the first of a job ID repeated in events is the one stored
				minutes.Add(e.Label, e.Version, e.Ring, e.StartedAt, e.Outcome)
			}
			added += n
		}
		return writeMinutes(ctx, tx, minutes.Rows())
	})
	if err != nil {
		return 0, fmt.Errorf("append %d events: %w", len(events), err)
	}
	return int(added), nil
}

// writeMinutes adds the counts of events just inserted to job_minutes.
func writeMinutes(ctx context.Context, tx *sql.Tx, rows []tally.JobMinute) error {
	err := upsertRows(ctx, tx, `INSERT INTO job_minutes (label, version, minute, ring, total, succeeded, failed, canceled) VALUES `,
		"(?, ?, ?, ?, ?, ?, ?, ?)", ` ON CONFLICT DO UPDATE SET total = total + excluded.total,
			succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed, canceled = canceled + excluded.canceled`,
		len(rows), func(i int, args []any) []any {
			m := &rows[i]
			return append(args, m.Label, m.Version, m.Minute, m.Ring, m.Total, m.Succeeded, m.Failed, m.Canceled)
		})
	if err != nil {
		return fmt.Errorf("job minutes: %w", err)
	}
	return nil
}

// CountJobs sums job_minutes' rows of the whole minutes at or after since
// and reads the events of the minute since falls in from the index of
// migration 0016 (keyed by start minute): one minute of events at most,
// however long the version has been reporting.
func (db *DB) CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (rollout.JobCounts, error) {
	var c rollout.JobCounts
	m, whole, partial := countMinutes(since)
	err := db.rd.QueryRowContext(ctx, countJobsSQL, rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled,
		label, version, us(since), ring, whole, m, partial).Scan(&c.Total, &c.Succeeded, &c.Failed, &c.Canceled)
	if err != nil {
		return c, fmt.Errorf("count jobs of %s %s: %w", label, version, err)
	}
	return c, nil
}

// countMinutes splits CountJobs' since: whole is the first minute read
// from job_minutes; when since is not a minute's start, the jobs of its
// minute m that started at or after it are read from the events
// (partial).
func countMinutes(since time.Time) (m, whole int64, partial bool) {
	m = tally.MinuteOf(since)
	if since.UnixMicro() == tally.MinuteStart(m).UnixMicro() {
		return m, m, false
	}
	return m, m + 1, true
}

// countJobsSQL is CountJobs' query: outcomes ?1-?3, label, version,
// since, ring, the first whole minute, since's minute and whether to
// read it from the events. The minute expression is the index's.
const countJobsSQL = `SELECT COALESCE(sum(t), 0), COALESCE(sum(s), 0), COALESCE(sum(f), 0), COALESCE(sum(c), 0) FROM (
		SELECT total AS t, succeeded AS s, failed AS f, canceled AS c FROM job_minutes
		WHERE label = ?4 AND version = ?5 AND minute >= ?8 AND (?7 < 0 OR ring = ?7)
		UNION ALL
		SELECT 1, outcome = ?1, outcome = ?2, outcome = ?3 FROM events
		WHERE ?10 AND label = ?4 AND version = ?5
			AND (started_at / 60000000 - (started_at < 0 AND started_at % 60000000 <> 0)) = ?9
			AND started_at >= ?6 AND (?7 < 0 OR ring = ?7))`
