package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
)

var _ rollout.OrgTargetStore = (*DB)(nil)

// SetOrgTarget upserts t with its audit entry.
func (db *DB) SetOrgTarget(ctx context.Context, t rollout.OrgTarget, audit rollout.AuditEntry) (rollout.OrgTarget, error) {
	t, err := rollout.PrepareOrgTarget(t)
	if err != nil {
		return t, err
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO org_targets (org, url, format, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (org) DO UPDATE SET url = excluded.url, format = excluded.format, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
			t.Org, t.URL, t.Format, t.UpdatedBy, t.UpdatedAt); err != nil {
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
	err := db.pool.QueryRow(ctx, `SELECT url, format, updated_by, updated_at FROM org_targets WHERE org = $1`, org).
		Scan(&t.URL, &t.Format, &t.UpdatedBy, &t.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return rollout.OrgTarget{}, fmt.Errorf("%w: organisation %s has no alert target", rollout.ErrNotFound, org)
	}
	if err != nil {
		return rollout.OrgTarget{}, fmt.Errorf("read alert target of %s: %w", org, err)
	}
	t.UpdatedAt = t.UpdatedAt.UTC()
	return t, nil
}

// DeleteOrgTarget removes org's target with its audit entry.
func (db *DB) DeleteOrgTarget(ctx context.Context, org string, audit rollout.AuditEntry) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM org_targets WHERE org = $1`, org)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: organisation %s has no alert target", rollout.ErrNotFound, org)
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("delete alert target of %s: %w", org, err)
	}
	return nil
}
