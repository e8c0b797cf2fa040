package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	err = db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		_, err := tx.Exec(ctx, `INSERT INTO pins
			(org, label, version, owner, reason, expires_at, override_revoked, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (org, label) DO UPDATE SET version = excluded.version, owner = excluded.owner,
				reason = excluded.reason, expires_at = excluded.expires_at,
				override_revoked = excluded.override_revoked, created_by = excluded.created_by,
				created_at = excluded.created_at`,
			pin.Org, pin.Label, pin.Version, pin.Owner, pin.Reason, pin.ExpiresAt, pin.OverrideRevoked,
			pin.CreatedBy, pin.CreatedAt)
		if isCode(err, foreignKeyViolation) {
			return false, rollout.ErrVersionMissing(pin.Label, pin.Version)
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("pin %s %s to %s: %w", pin.Org, pin.Label, pin.Version, err)
	}
	return nil
}

// DeletePin removes org's pin of label; ErrNotFound when there is none.
func (db *DB) DeletePin(ctx context.Context, org, label string, audit rollout.AuditEntry) error {
	err := db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM pins WHERE org = $1 AND label = $2`, org, label)
		if err == nil && tag.RowsAffected() == 0 {
			return false, rollout.ErrNoPin(org, label)
		}
		return err == nil, err
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
	rows, err := db.pool.Query(ctx, `SELECT org, label, version, owner, reason, expires_at, override_revoked, created_by, created_at
		FROM pins WHERE (org, label) > ($1, $2) AND ($3 = '' OR org = $3) AND ($4 = '' OR label = $4)
			AND ($5 OR expires_at > $6)
		ORDER BY org, label LIMIT $7`, after[0], after[1], org, label, withExpired, now, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list pins: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Pin, error) {
		var pin rollout.Pin
		err := r.Scan(&pin.Org, &pin.Label, &pin.Version, &pin.Owner, &pin.Reason, &pin.ExpiresAt, &pin.OverrideRevoked,
			&pin.CreatedBy, &pin.CreatedAt)
		pin.ExpiresAt, pin.CreatedAt = utc(pin.ExpiresAt), utc(pin.CreatedAt)
		return pin, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list pins: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.KeyCursor(out[n-1].Org, out[n-1].Label), nil
	}
	return out, "", nil
}
