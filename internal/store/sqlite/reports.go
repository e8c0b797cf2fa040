package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

var _ rollout.ReportStore = (*DB)(nil)

// AddReport inserts r; with an idempotency key the unique index on (org,
// key), not a read first, decides between racing writers, and the loser
// reads the winner's report in the same transaction.
func (db *DB) AddReport(ctx context.Context, r rollout.Report) (rollout.Report, bool, error) {
	r, err := rollout.PrepareReport(r, time.Now())
	if err != nil {
		return r, false, err
	}
	var key any // NULL without a key: NULLs never collide in the index
	if r.IdempotencyKey != "" {
		key = r.IdempotencyKey
	}
	fp := rollout.ReportFingerprint(r)
	added := true
	var prev rollout.Report
	var prevFP string
	err = db.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO reports
			(org, label, version, job_id, text, signature, template, known, actor, created_at, idempotency_key, fingerprint)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org, idempotency_key) DO NOTHING RETURNING id`,
			r.Org, r.Label, r.Version, r.JobID, r.Text, r.Signature, r.Template, r.Known, r.Actor, us(r.CreatedAt), key, fp).Scan(&r.ID)
		if !errors.Is(err, sql.ErrNoRows) || key == nil {
			return err
		}
		added = false
		var at int64
		err = tx.QueryRowContext(ctx, `SELECT `+reportColumns+`, fingerprint FROM reports WHERE org = ? AND idempotency_key = ?`, r.Org, key).
			Scan(&prev.ID, &prev.Org, &prev.Label, &prev.Version, &prev.JobID, &prev.Text, &prev.Signature, &prev.Template, &prev.Known, &prev.Actor, &at, &prev.IdempotencyKey, &prevFP)
		prev.CreatedAt = fromUS(at)
		return err
	})
	switch {
	case err != nil:
		return r, false, fmt.Errorf("add report on %s from %s: %w", r.Label, r.Org, err)
	case added:
		return r, true, nil
	case prevFP != fp:
		return r, false, rollout.ErrReportKeyReused(r.Org, r.IdempotencyKey, prev)
	}
	return prev, false, nil
}

// reportColumns are a report's columns in the order the reads scan them.
const reportColumns = `id, org, label, version, job_id, text, signature, template, known, actor, created_at, coalesce(idempotency_key, '')`

// ReportOrgs reads the distinct orgs from the signature index alone.
func (db *DB) ReportOrgs(ctx context.Context, label, signature string, since time.Time) ([]string, error) {
	if signature == "" {
		return nil, nil
	}
	rows, err := db.rd.QueryContext(ctx, `SELECT DISTINCT org FROM reports
		WHERE label = ? AND signature = ? AND created_at >= ? ORDER BY org`, label, signature, us(since))
	if err != nil {
		return nil, fmt.Errorf("orgs reporting %s on %s: %w", signature, label, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var org string
		if err := rows.Scan(&org); err != nil {
			return nil, fmt.Errorf("orgs reporting %s on %s: %w", signature, label, err)
		}
		out = append(out, org)
	}
	if err := rows.Err(); err != nil {
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
	q := `SELECT ` + reportColumns + ` FROM reports WHERE id < ?`
	args := []any{after}
	if f.Label != "" {
		q += ` AND label = ?`
		args = append(args, f.Label)
	}
	if f.Signature != "" {
		q += ` AND signature = ?`
		args = append(args, f.Signature)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, n+1)
	rows, err := db.rd.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list reports: %w", err)
	}
	defer rows.Close()
	var out []rollout.Report
	for rows.Next() {
		var r rollout.Report
		var at int64
		if err := rows.Scan(&r.ID, &r.Org, &r.Label, &r.Version, &r.JobID, &r.Text, &r.Signature, &r.Template, &r.Known, &r.Actor, &at, &r.IdempotencyKey); err != nil {
			return nil, "", fmt.Errorf("list reports: %w", err)
		}
		r.CreatedAt = fromUS(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
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
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO escalations
			(key, label, signature, template, rollout_id, version, orgs, action, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			e.Key, e.Label, e.Signature, e.Template, e.RolloutID, e.Version, e.Orgs, e.Action, us(e.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if added = n > 0; err != nil || !added {
			return err
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
	var at int64
	err := db.rd.QueryRowContext(ctx, `SELECT key, label, signature, template, rollout_id, version, orgs, action, created_at
		FROM escalations WHERE key = ?`, key).
		Scan(&e.Key, &e.Label, &e.Signature, &e.Template, &e.RolloutID, &e.Version, &e.Orgs, &e.Action, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("escalation %s: %w", key, rollout.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("read escalation %s: %w", key, err)
	}
	e.CreatedAt = fromUS(at)
	return e, nil
}
