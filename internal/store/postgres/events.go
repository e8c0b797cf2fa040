package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// AppendEvents inserts the batch in one statement (arrays unnested
// server-side: one round trip, one commit). Rows go in job ID order, so
// concurrent retries of overlapping batches wait on each other in the same
// order instead of deadlocking.
func (db *DB) AppendEvents(ctx context.Context, events []rollout.JobEvent) (int, error) {
	if err := rollout.CheckEvents(events); err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	sorted := append([]rollout.JobEvent(nil), events...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].JobID < sorted[j].JobID })
	n := len(sorted)
	ids, orgs, labels, versions, outcomes, errs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	rings, durations, started := make([]int32, n), make([]int64, n), make([]time.Time, n)
	for i, e := range sorted {
		ids[i], orgs[i], labels[i], versions[i], outcomes[i], errs[i] = e.JobID, e.Org, e.Label, e.Version, e.Outcome, e.ErrorText
		rings[i], durations[i], started[i] = int32(e.Ring), e.DurationMs, e.StartedAt
	}
	for attempt := 0; ; attempt++ {
		tag, err := db.pool.Exec(ctx, `INSERT INTO events
			(job_id, org, label, version, ring, outcome, started_at, duration_ms, error_text)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
				$7::timestamptz[], $8::bigint[], $9::text[]) AS e
			ORDER BY 1
			ON CONFLICT (job_id) DO NOTHING`,
			ids, orgs, labels, versions, rings, outcomes, started, durations, errs)
		if isCode(err, deadlockDetected) && attempt < 3 {
			continue // cannot happen with sorted batches; harmless if it does
		}
		if err != nil {
			return 0, fmt.Errorf("append %d events: %w", n, err)
		}
		return int(tag.RowsAffected()), nil
	}
}

// CountJobs aggregates events from the covering index.
func (db *DB) CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (rollout.JobCounts, error) {
	var c rollout.JobCounts
	err := db.pool.QueryRow(ctx, `SELECT COUNT(*),
			COUNT(*) FILTER (WHERE outcome = $5), COUNT(*) FILTER (WHERE outcome = $6), COUNT(*) FILTER (WHERE outcome = $7)
		FROM events WHERE label = $1 AND version = $2 AND ($3 < 0 OR ring = $3) AND started_at >= $4`,
		label, version, ring, since, rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled).
		Scan(&c.Total, &c.Succeeded, &c.Failed, &c.Canceled)
	if err != nil {
		return c, fmt.Errorf("count jobs of %s %s: %w", label, version, err)
	}
	return c, nil
}
