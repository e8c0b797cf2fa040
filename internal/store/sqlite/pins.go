package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

// PutPin creates or replaces org's pin of label; ErrNotFound when the
// version does not exist.
func (db *DB) PutPin(ctx context.Context, pin rollout.Pin, audit rollout.AuditEntry) error {
	pin, err := rollout.PreparePin(pin)
	if err != nil {
		return err
	}
	err = db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if err := versionExists(ctx, tx, pin.Label, pin.Version); err != nil {
			return false, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO pins
			(org, label, version, owner, reason, expires_at, override_revoked, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org, label) DO UPDATE SET version = excluded.version, owner = excluded.owner,
				reason = excluded.reason, expires_at = excluded.expires_at,
				override_revoked = excluded.override_revoked, created_by = excluded.created_by,
				created_at = excluded.created_at`,
			pin.Org, pin.Label, pin.Version, pin.Owner, pin.Reason, us(pin.ExpiresAt), b2i(pin.OverrideRevoked),
			pin.CreatedBy, us(pin.CreatedAt))
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("pin %s %s to %s: %w", pin.Org, pin.Label, pin.Version, err)
	}
	return nil
}

// DeletePin removes org's pin of label; ErrNotFound when there is none.
func (db *DB) DeletePin(ctx context.Context, org, label string, audit rollout.AuditEntry) error {
	err := db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM pins WHERE org = ? AND label = ?`, org, label)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			return false, rollout.ErrNoPin(org, label)
		}
		return n > 0, err
	})
	if err != nil {
		return fmt.Errorf("delete pin: %w", err)
	}
	return nil
}

// ListPins lists pins ordered by org then label. A pin is expired when
// ExpiresAt is at or before now.
func (db *DB) ListPins(ctx context.Context, org, label string, withExpired bool, now time.Time, p rollout.Page) ([]rollout.Pin, string, error) {
	after, err := page.AfterKey(p.After, 2)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	q := `SELECT org, label, version, owner, reason, expires_at, override_revoked, created_by, created_at
		FROM pins WHERE (org, label) > (?, ?)`
	args := []any{after[0], after[1]}
	if org != "" {
		q += ` AND org = ?`
		args = append(args, org)
	}
	if label != "" {
		q += ` AND label = ?`
		args = append(args, label)
	}
	if !withExpired {
		q += ` AND expires_at > ?`
		args = append(args, us(now))
	}
	q += ` ORDER BY org, label LIMIT ?`
	args = append(args, n+1)
	rows, err := db.rd.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list pins: %w", err)
	}
	defer rows.Close()
	var out []rollout.Pin
	for rows.Next() {
		var pin rollout.Pin
		var expires, created int64
		var override int
		if err := rows.Scan(&pin.Org, &pin.Label, &pin.Version, &pin.Owner, &pin.Reason, &expires, &override,
			&pin.CreatedBy, &created); err != nil {
			return nil, "", fmt.Errorf("list pins: %w", err)
		}
		pin.ExpiresAt = fromUS(expires)
		pin.CreatedAt = fromUS(created)
		pin.OverrideRevoked = override != 0
		out = append(out, pin)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list pins: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.KeyCursor(out[n-1].Org, out[n-1].Label), nil
	}
	return out, "", nil
}
