package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

// ListAudit lists entries newest first. Since is inclusive, Until
// exclusive; SubjectPrefix matches case-sensitively.
func (db *DB) ListAudit(ctx context.Context, f rollout.AuditFilter, p rollout.Page) ([]rollout.AuditEntry, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, err := db.pool.Query(ctx, `SELECT id, at, actor, action, subject, reason, details FROM audit
		WHERE id < $1 AND ($2 = '' OR actor = $2) AND ($3 = '' OR action = $3) AND starts_with(subject, $4)
			AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
		ORDER BY id DESC LIMIT $7`, after, f.Actor, f.Action, f.SubjectPrefix, since, until, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.AuditEntry, error) {
		var a rollout.AuditEntry
		var details *string
		err := r.Scan(&a.ID, &a.At, &a.Actor, &a.Action, &a.Subject, &a.Reason, &details)
		a.At = utc(a.At)
		if details != nil {
			a.Details = json.RawMessage(*details)
		}
		return a, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.SeqCursor(out[n-1].ID), nil
	}
	return out, "", nil
}

// insertAudit writes a in the transaction of the change it records.
func insertAudit(ctx context.Context, tx pgx.Tx, a rollout.AuditEntry) error {
	a = rollout.PrepareAudit(a)
	var details *string
	if len(a.Details) > 0 {
		s := string(a.Details)
		details = &s
	}
	var err error
	if a.ID != 0 {
		_, err = tx.Exec(ctx, `INSERT INTO audit (id, at, actor, action, subject, reason, details)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ID, a.At, a.Actor, a.Action, a.Subject, a.Reason, details)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO audit (at, actor, action, subject, reason, details)
			VALUES ($1, $2, $3, $4, $5, $6)`, a.At, a.Actor, a.Action, a.Subject, a.Reason, details)
	}
	if isCode(err, uniqueViolation) {
		return rollout.ErrAuditExists(a.ID)
	}
	if err != nil {
		return fmt.Errorf("write audit entry %s %s: %w", a.Action, a.Subject, err)
	}
	return nil
}
