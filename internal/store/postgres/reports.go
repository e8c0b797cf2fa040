package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

var _ rollout.ReportStore = (*DB)(nil)

// AddReport inserts r; with an idempotency key the unique index on (org,
// key), not a read first, decides between racing writers: ON CONFLICT
// waits for a concurrent insert of the same key to commit (or roll back),
// and the loser then reads the winner's report.
func (db *DB) AddReport(ctx context.Context, r rollout.Report) (rollout.Report, bool, error) {
	r, err := rollout.PrepareReport(r, time.Now())
	if err != nil {
		return r, false, err
	}
	var key *string // NULL without a key: NULLs never collide in the index
	if r.IdempotencyKey != "" {
		key = &r.IdempotencyKey
	}
	fp := rollout.ReportFingerprint(r)
	err = db.pool.QueryRow(ctx, `INSERT INTO reports
		(org, label, version, job_id, text, signature, template, known, actor, created_at, idempotency_key, fingerprint)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (org, idempotency_key) DO NOTHING RETURNING id`,
		r.Org, r.Label, r.Version, r.JobID, r.Text, r.Signature, r.Template, r.Known, r.Actor, r.CreatedAt, key, fp).Scan(&r.ID)
	if err == nil {
		return r, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) || key == nil {
		return r, false, fmt.Errorf("add report on %s from %s: %w", r.Label, r.Org, err)
	}
	// The conflicting row is committed (ON CONFLICT waited for it), so
	// this read, a statement later, finds it; only a prune in between
	// could take it away, and then the error makes the client retry,
	// which stores the report anew.
	var prev rollout.Report
	var prevFP string
	err = db.pool.QueryRow(ctx, `SELECT `+reportColumns+`, fingerprint FROM reports WHERE org = $1 AND idempotency_key = $2`, r.Org, *key).
		Scan(&prev.ID, &prev.Org, &prev.Label, &prev.Version, &prev.JobID, &prev.Text, &prev.Signature, &prev.Template, &prev.Known, &prev.Actor, &prev.CreatedAt, &prev.IdempotencyKey, &prevFP)
	if err != nil {
		return r, false, fmt.Errorf("add report on %s from %s: read the report of Idempotency-Key %q: %w", r.Label, r.Org, *key, err)
	}
	prev.CreatedAt = utc(prev.CreatedAt)
	if prevFP != fp {
		return r, false, rollout.ErrReportKeyReused(r.Org, r.IdempotencyKey, prev)
	}
	return prev, false, nil
}

// reportColumns are a report's columns in the order the reads scan them.
const reportColumns = `id, org, label, version, job_id, text, signature, template, known, actor, created_at, coalesce(idempotency_key, '')`

// ReportOrgs reads the distinct orgs from the signature index.
func (db *DB) ReportOrgs(ctx context.Context, label, signature string, since time.Time) ([]string, error) {
	if signature == "" {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT org FROM reports
		WHERE label = $1 AND signature = $2 AND created_at >= $3 ORDER BY org`, label, signature, since)
	if err != nil {
		return nil, fmt.Errorf("orgs reporting %s on %s: %w", signature, label, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("orgs reporting %s on %s: %w", signature, label, err)
	}
	return out, nil
}

// ListReports lists reports newest first.
func (db *DB) ListReports(ctx context.Context, f rollout.ReportFilter, p rollout.Page) ([]rollout.Report, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	q := `SELECT ` + reportColumns + ` FROM reports WHERE id < $1`
	args := []any{after}
	if f.Label != "" {
		args = append(args, f.Label)
		q += fmt.Sprintf(` AND label = $%d`, len(args))
	}
	if f.Signature != "" {
		args = append(args, f.Signature)
		q += fmt.Sprintf(` AND signature = $%d`, len(args))
	}
	args = append(args, n+1)
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list reports: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rollout.Report, error) {
		var r rollout.Report
		err := row.Scan(&r.ID, &r.Org, &r.Label, &r.Version, &r.JobID, &r.Text, &r.Signature, &r.Template, &r.Known, &r.Actor, &r.CreatedAt, &r.IdempotencyKey)
		r.CreatedAt = utc(r.CreatedAt)
		return r, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list reports: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.SeqCursor(out[n-1].ID), nil
	}
	return out, "", nil
}

// AddEscalation inserts e and its audit entry unless e.Key exists; the
// primary key, not a read first, decides between racing writers.
func (db *DB) AddEscalation(ctx context.Context, e rollout.Escalation, audit rollout.AuditEntry) (bool, error) {
	e, err := rollout.PrepareEscalation(e, time.Now())
	if err != nil {
		return false, err
	}
	var added bool
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO escalations
			(key, label, signature, template, rollout_id, version, orgs, action, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (key) DO NOTHING`,
			e.Key, e.Label, e.Signature, e.Template, e.RolloutID, e.Version, e.Orgs, e.Action, e.CreatedAt)
		if err != nil {
			return err
		}
		if added = tag.RowsAffected() > 0; !added {
			return nil
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return false, fmt.Errorf("record escalation %s: %w", e.Key, err)
	}
	return added, nil
}

// GetEscalation returns ErrNotFound when key is not recorded.
func (db *DB) GetEscalation(ctx context.Context, key string) (rollout.Escalation, error) {
	var e rollout.Escalation
	err := db.pool.QueryRow(ctx, `SELECT key, label, signature, template, rollout_id, version, orgs, action, created_at
		FROM escalations WHERE key = $1`, key).
		Scan(&e.Key, &e.Label, &e.Signature, &e.Template, &e.RolloutID, &e.Version, &e.Orgs, &e.Action, &e.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, fmt.Errorf("escalation %s: %w", key, rollout.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("read escalation %s: %w", key, err)
	}
	e.CreatedAt = utc(e.CreatedAt)
	return e, nil
}
