package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

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
	err = db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if err := imageExists(ctx, tx, v.Label); err != nil {
			return false, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO versions
			(label, version, gate, snapshot, check_report, revoked, revoked_reason, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			v.Label, v.Version, v.Gate, blob(v.Snapshot), blob(v.CheckReport), b2i(v.Revoked), v.RevokedReason, us(v.CreatedAt))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
			return false, rollout.ErrVersionExists(v.Label, v.Version)
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

func imageExists(ctx context.Context, tx *sql.Tx, label string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM images WHERE label = ?`, label).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return rollout.ErrImageMissing(label)
	}
	return err
}

func versionExists(ctx context.Context, tx *sql.Tx, label, version string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM versions WHERE label = ? AND version = ?`, label, version).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return rollout.ErrVersionMissing(label, version)
	}
	return err
}

func blob(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// GetVersion returns ErrNotFound when absent.
func (db *DB) GetVersion(ctx context.Context, label, version string, withBlobs bool) (rollout.Version, error) {
	cols := `label, version, gate, NULL, NULL, revoked, revoked_reason, created_at`
	if withBlobs {
		cols = `label, version, gate, snapshot, check_report, revoked, revoked_reason, created_at`
	}
	row := db.rd.QueryRowContext(ctx, `SELECT `+cols+` FROM versions WHERE label = ? AND version = ?`, label, version)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return v, rollout.ErrNoVersion(label, version)
	}
	if err != nil {
		return v, fmt.Errorf("get version %s of %s: %w", version, label, err)
	}
	return v, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanVersion(s scanner) (rollout.Version, error) {
	var v rollout.Version
	var snap, report []byte
	var revoked int
	var at int64
	if err := s.Scan(&v.Label, &v.Version, &v.Gate, &snap, &report, &revoked, &v.RevokedReason, &at); err != nil {
		return v, err
	}
	if len(snap) > 0 {
		v.Snapshot = json.RawMessage(snap)
	}
	if len(report) > 0 {
		v.CheckReport = json.RawMessage(report)
	}
	v.Revoked = revoked != 0
	v.CreatedAt = fromUS(at)
	return v, nil
}

// ListVersions lists label's versions, most recently registered first.
func (db *DB) ListVersions(ctx context.Context, label string, p rollout.Page) ([]rollout.Version, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	rows, err := db.rd.QueryContext(ctx, `SELECT seq, label, version, gate, NULL, NULL, revoked, revoked_reason, created_at
		FROM versions WHERE label = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, label, after, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s: %w", label, err)
	}
	defer rows.Close()
	var out []rollout.Version
	var seqs []int64
	for rows.Next() {
		var seq int64
		var v rollout.Version
		var snap, report []byte
		var revoked int
		var at int64
		if err := rows.Scan(&seq, &v.Label, &v.Version, &v.Gate, &snap, &report, &revoked, &v.RevokedReason, &at); err != nil {
			return nil, "", fmt.Errorf("list versions of %s: %w", label, err)
		}
		v.Revoked = revoked != 0
		v.CreatedAt = fromUS(at)
		out = append(out, v)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
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
	err := db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if err := versionExists(ctx, tx, label, version); err != nil {
			return false, err
		}
		res, err := tx.ExecContext(ctx, `UPDATE versions SET revoked = 1, revoked_reason = ?
			WHERE label = ? AND version = ? AND revoked = 0`, reason, label, version)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
	})
	if err != nil {
		return fmt.Errorf("revoke version %s of %s: %w", version, label, err)
	}
	return nil
}
