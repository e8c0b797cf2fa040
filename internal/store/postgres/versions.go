package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

// CreateVersion registers v. ErrNotFound when its image does not exist
// (PutImage first), ErrConflict when label+version exists.
func (db *DB) CreateVersion(ctx context.Context, v rollout.Version, audit rollout.AuditEntry) error {
	v, err := rollout.PrepareVersion(v)
	if err != nil {
		return err
	}
	err = db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		_, err := tx.Exec(ctx, `INSERT INTO versions
			(label, version, gate, snapshot, check_report, revoked, revoked_reason, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			v.Label, v.Version, v.Gate, blob(v.Snapshot), blob(v.CheckReport), v.Revoked, v.RevokedReason, v.CreatedAt)
		switch {
		case isCode(err, uniqueViolation):
			return false, rollout.ErrVersionExists(v.Label, v.Version)
		case isCode(err, foreignKeyViolation):
			return false, rollout.ErrImageMissing(v.Label)
		}
		if err == nil {
			err = insertVersionImage(ctx, tx, v)
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("create version %s %s: %w", v.Label, v.Version, err)
	}
	return nil
}

func blob(b json.RawMessage) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// GetVersion returns ErrNotFound when absent.
func (db *DB) GetVersion(ctx context.Context, label, version string, withBlobs bool) (rollout.Version, error) {
	cols := `label, version, gate, NULL::bytea, NULL::bytea, revoked, revoked_reason, created_at`
	if withBlobs {
		cols = `label, version, gate, snapshot, check_report, revoked, revoked_reason, created_at`
	}
	v, err := scanVersion(db.pool.QueryRow(ctx, `SELECT `+cols+` FROM versions WHERE label = $1 AND version = $2`, label, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, rollout.ErrNoVersion(label, version)
	}
	if err != nil {
		return v, fmt.Errorf("get version %s of %s: %w", version, label, err)
	}
	return v, nil
}

func scanVersion(s pgx.Row, extra ...any) (rollout.Version, error) {
	var v rollout.Version
	var snap, report []byte
	if err := s.Scan(append([]any{&v.Label, &v.Version, &v.Gate, &snap, &report, &v.Revoked, &v.RevokedReason, &v.CreatedAt}, extra...)...); err != nil {
		return v, err
	}
	if len(snap) > 0 {
		v.Snapshot = json.RawMessage(snap)
	}
	if len(report) > 0 {
		v.CheckReport = json.RawMessage(report)
	}
	v.CreatedAt = utc(v.CreatedAt)
	return v, nil
}

// ListVersions lists label's versions, most recently registered first.
func (db *DB) ListVersions(ctx context.Context, label string, p rollout.Page) ([]rollout.Version, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	rows, err := db.pool.Query(ctx, `SELECT label, version, gate, NULL::bytea, NULL::bytea, revoked, revoked_reason, created_at, seq
		FROM versions WHERE label = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, label, after, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s: %w", label, err)
	}
	var seqs []int64
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Version, error) {
		var seq int64
		v, err := scanVersion(r, &seq)
		seqs = append(seqs, seq)
		return v, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s: %w", label, err)
	}
	if len(out) > n {
		return out[:n], page.SeqCursor(seqs[n-1]), nil
	}
	return out, "", nil
}

// RevokeVersion marks the version revoked. Revoking a revoked version
// changes nothing (the first reason stays) and writes no audit entry.
func (db *DB) RevokeVersion(ctx context.Context, label, version, reason string, audit rollout.AuditEntry) error {
	err := db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		var was bool
		err := tx.QueryRow(ctx, `SELECT revoked FROM versions WHERE label = $1 AND version = $2 FOR UPDATE`,
			label, version).Scan(&was)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, rollout.ErrNoVersion(label, version)
		}
		if err != nil || was {
			return false, err
		}
		_, err = tx.Exec(ctx, `UPDATE versions SET revoked = true, revoked_reason = $1 WHERE label = $2 AND version = $3`,
			reason, label, version)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("revoke version %s of %s: %w", version, label, err)
	}
	return nil
}
