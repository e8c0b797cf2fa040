package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
	sqlite3 "modernc.org/sqlite/lib"
)

// ListAudit lists entries newest first. Since is inclusive, Until
// exclusive; SubjectPrefix matches case-sensitively.
func (db *DB) ListAudit(ctx context.Context, f rollout.AuditFilter, p rollout.Page) ([]rollout.AuditEntry, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	q := `SELECT id, at, actor, action, subject, reason, details FROM audit WHERE id < ?`
	args := []any{after}
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		q += ` AND action = ?`
		args = append(args, f.Action)
	}
	if f.SubjectPrefix != "" {
		q += ` AND substr(subject, 1, length(?)) = ?`
		args = append(args, f.SubjectPrefix, f.SubjectPrefix)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, us(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND at < ?`
		args = append(args, us(f.Until))
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, n+1)
	rows, err := db.rd.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []rollout.AuditEntry
	for rows.Next() {
		var a rollout.AuditEntry
		var at int64
		var details sql.NullString
		if err := rows.Scan(&a.ID, &at, &a.Actor, &a.Action, &a.Subject, &a.Reason, &details); err != nil {
			return nil, "", fmt.Errorf("list audit: %w", err)
		}
		a.At = fromUS(at)
		if details.Valid {
			a.Details = json.RawMessage(details.String)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.SeqCursor(out[n-1].ID), nil
	}
	return out, "", nil
}

// insertAudit writes a in the transaction of the change it records.
func insertAudit(ctx context.Context, tx *sql.Tx, a rollout.AuditEntry) error {
	a = rollout.PrepareAudit(a)
	var id any
	if a.ID != 0 {
		id = a.ID
	}
	var details any
	if len(a.Details) > 0 {
		details = string(a.Details)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (id, at, actor, action, subject, reason, details)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, id, us(a.At), a.Actor, a.Action, a.Subject, a.Reason, details)
	if err != nil {
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return rollout.ErrAuditExists(a.ID)
		}
		return fmt.Errorf("write audit entry %s %s: %w", a.Action, a.Subject, err)
	}
	return nil
}
