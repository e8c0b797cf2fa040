package sqlite

import (
	"context"
	"strings"

	"github.com/imagegate/imagegate/internal/store/batch"
)

// WriterSynchronous reads the synchronous setting of the writer
// connection (2 is FULL), for tests that check relaxed commits restore it.
func (db *DB) WriterSynchronous(ctx context.Context) (int, error) {
	var v int
	err := db.wr.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&v)
	return v, err
}

// CountJobsPlan is SQLite's plan for CountJobs' query.
func (db *DB) CountJobsPlan(ctx context.Context) (string, error) {
	return db.queryPlan(ctx, countJobsSQL, "succeeded", "failed", "canceled", "img", "v1", 0, 0, 1, 0, true)
}

// RunsSelectPlan is SQLite's plan for AssignRuns' read of the versions
// stored for three runs.
func (db *DB) RunsSelectPlan(ctx context.Context) (string, error) {
	return db.queryPlan(ctx, runsSelectSQL(3), "img", "r1", "img", "r2", "other", "r1")
}

// queryPlan is EXPLAIN QUERY PLAN's details for query with args, a line
// each.
func (db *DB) queryPlan(ctx context.Context, query string, args ...any) (string, error) {
	rows, err := db.rd.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "\n"), rows.Err()
}

// BulkTemplates makes RingTelemetry read missing templates in one query
// however few are missing, until the returned function is called.
func BulkTemplates() (restore func()) {
	n := templateLookups
	templateLookups = 0
	return func() { templateLookups = n }
}

// RunWriter is the batch.Writer behind AssignRun.
func (db *DB) RunWriter() batch.Writer { return runRows{db} }
