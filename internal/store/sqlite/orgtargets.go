package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/imagegate/imagegate/internal/rollout"
)

var _ rollout.OrgTargetStore = (*DB)(nil)

// SetOrgTarget upserts t with its audit entry.
func (db *DB) SetOrgTarget(ctx context.Context, t rollout.OrgTarget, audit rollout.AuditEntry) (rollout.OrgTarget, error) {
	t, err := rollout.PrepareOrgTarget(t)
	if err != nil {
		return t, err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO org_targets (org, url, format, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (org) DO UPDATE SET url = excluded.url, format = excluded.format, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
			t.Org, t.URL, t.Format, t.UpdatedBy, us(t.UpdatedAt)); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return t, fmt.Errorf("set alert target of %s: %w", t.Org, err)
	}
	return t, nil
}

// GetOrgTarget returns ErrNotFound when org has none.
func (db *DB) GetOrgTarget(ctx context.Context, org string) (rollout.OrgTarget, error) {
	t := rollout.OrgTarget{Org: org}
	var at int64
	err := db.rd.QueryRowContext(ctx, `SELECT url, format, updated_by, updated_at FROM org_targets WHERE org = ?`, org).
		Scan(&t.URL, &t.Format, &t.UpdatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return rollout.OrgTarget{}, fmt.Errorf("%w: organisation %s has no alert target", rollout.ErrNotFound, org)
	}
	if err != nil {
		return rollout.OrgTarget{}, fmt.Errorf("read alert target of %s: %w", org, err)
	}
	t.UpdatedAt = fromUS(at)
	return t, nil
}

// DeleteOrgTarget removes org's target with its audit entry.
func (db *DB) DeleteOrgTarget(ctx context.Context, org string, audit rollout.AuditEntry) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM org_targets WHERE org = ?`, org)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("%w: organisation %s has no alert target", rollout.ErrNotFound, org))
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("delete alert target of %s: %w", org, err)
	}
	return nil
}
