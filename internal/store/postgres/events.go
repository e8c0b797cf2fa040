package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/tally"
)

// AppendEvents inserts the batch and adds the new events to job_minutes
// in one statement (arrays unnested server-side: one round trip, one
// commit). Rows go in job ID order, so concurrent retries of overlapping
// batches wait on each other in the same order instead of deadlocking;
// job_minutes' rows then go in key order, after every event's. Of a job
// repeated in events the first is inserted (DISTINCT ON by position in
// the stably sorted batch).
func (db *DB) AppendEvents(ctx context.Context, events []rollout.JobEvent) (int, error) {
	if err := rollout.CheckEvents(events); err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	sorted := append([]rollout.JobEvent(nil), events...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].JobID < sorted[j].JobID })
	n := len(sorted)
	ids, orgs, labels, versions, outcomes, errs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	rings, durations, started := make([]int32, n), make([]int64, n), make([]time.Time, n)
	for i, e := range sorted {
		ids[i], orgs[i], labels[i], versions[i], outcomes[i], errs[i] = e.JobID, e.Org, e.Label, e.Version, e.Outcome, e.ErrorText
		rings[i], durations[i], started[i] = int32(e.Ring), e.DurationMs, e.StartedAt
	}
	for attempt := 0; ; attempt++ {
		var added int
		err := db.pool.QueryRow(ctx, `WITH ins AS (INSERT INTO events
				(job_id, org, label, version, ring, outcome, started_at, duration_ms, error_text)
				SELECT DISTINCT ON (e.id) e.id, e.org, e.label, e.version, e.ring, e.outcome, e.started, e.dur, e.err
				FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
					$7::timestamptz[], $8::bigint[], $9::text[]) WITH ORDINALITY
					AS e(id, org, label, version, ring, outcome, started, dur, err, pos)
				ORDER BY e.id, e.pos
				ON CONFLICT (job_id) DO NOTHING
				RETURNING label, version, ring, started_at, outcome),
			`+addMinutesCTE(10)+`
			SELECT count(*) FROM ins`,
			ids, orgs, labels, versions, rings, outcomes, started, durations, errs,
			rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled).Scan(&added)
		if isCode(err, deadlockDetected) && attempt < 3 {
			continue // cannot happen with sorted batches; harmless if it does
		}
		if err != nil {
			return 0, fmt.Errorf("append %d events: %w", n, err)
		}
		return added, nil
	}
}

// addMinutesCTE is a CTE that adds the rows a CTE ins returned (label,
// version, ring, started_at, outcome of the events it inserted) to
// job_minutes, with the outcomes succeeded, failed and canceled in
// parameters $p-$p+2. The minute is migration 0016's (tally.MinuteOf).
func addMinutesCTE(p int) string {
	return fmt.Sprintf(`added_minutes AS (INSERT INTO job_minutes AS j
		(label, version, minute, ring, total, succeeded, failed, canceled)
		SELECT label, version, floor(extract(epoch FROM started_at) / 60)::bigint, ring, count(*),
			count(*) FILTER (WHERE outcome = $%d), count(*) FILTER (WHERE outcome = $%d), count(*) FILTER (WHERE outcome = $%d)
		FROM ins GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
		ON CONFLICT (label, version, minute, ring) DO UPDATE SET total = j.total + excluded.total,
			succeeded = j.succeeded + excluded.succeeded, failed = j.failed + excluded.failed,
			canceled = j.canceled + excluded.canceled)`, p, p+1, p+2)
}

// CountJobs sums job_minutes' rows of the whole minutes at or after since
// and reads the events of the minute since falls in from the covering
// index (one range per ring that has jobs in that minute): one minute of
// events at most, however long the version has been reporting.
func (db *DB) CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (rollout.JobCounts, error) {
	var c rollout.JobCounts
	m := tally.MinuteOf(since)
	whole, partial := m, false
	if since.UnixMicro() != tally.MinuteStart(m).UnixMicro() {
		whole, partial = m+1, true
	}
	err := db.pool.QueryRow(ctx, `SELECT COALESCE(sum(t), 0)::bigint, COALESCE(sum(s), 0)::bigint, COALESCE(sum(f), 0)::bigint, COALESCE(sum(c), 0)::bigint FROM (
			SELECT total AS t, succeeded AS s, failed AS f, canceled AS c FROM job_minutes
			WHERE label = $1 AND version = $2 AND minute >= $5 AND ($3 < 0 OR ring = $3)
			UNION ALL
			SELECT 1, (outcome = $8)::int, (outcome = $9)::int, (outcome = $10)::int FROM events
			WHERE $7 AND label = $1 AND version = $2 AND ring = ANY(CASE WHEN $3 >= 0 THEN ARRAY[$3::int] ELSE
					ARRAY(SELECT ring FROM job_minutes WHERE label = $1 AND version = $2 AND minute = $6) END)
				AND started_at >= $4 AND started_at < $11) AS u`,
		label, version, ring, since, whole, m, partial, rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled,
		tally.MinuteStart(m+1)).
		Scan(&c.Total, &c.Succeeded, &c.Failed, &c.Canceled)
	if err != nil {
		return c, fmt.Errorf("count jobs of %s %s: %w", label, version, err)
	}
	return c, nil
}
