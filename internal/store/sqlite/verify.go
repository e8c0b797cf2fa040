package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imagegate/imagegate/internal/rollout"
)

var _ rollout.VerifyStore = (*DB)(nil)

// insertVersionImage writes v.Image in CreateVersion's transaction.
func insertVersionImage(ctx context.Context, tx *sql.Tx, v rollout.Version) error {
	if v.Image == nil {
		return nil
	}
	opts, err := json.Marshal(v.Image.ScanOptions)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO version_images (label, version, ref, repository, tag, digest, scan_options)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, v.Label, v.Version, v.Image.Ref, v.Image.Repository, v.Image.Tag, v.Image.Digest, string(opts))
	return err
}

// VersionImage returns ErrNotFound when label+version has no image.
func (db *DB) VersionImage(ctx context.Context, label, version string) (rollout.ImageRef, error) {
	var img rollout.ImageRef
	var opts string
	var drift sql.NullString
	var driftedAt int64
	err := db.rd.QueryRowContext(ctx, `SELECT ref, repository, tag, digest, scan_options, drifted_at, drift
		FROM version_images WHERE label = ? AND version = ?`, label, version).
		Scan(&img.Ref, &img.Repository, &img.Tag, &img.Digest, &opts, &driftedAt, &drift)
	if errors.Is(err, sql.ErrNoRows) {
		return img, fmt.Errorf("image of %s %s: %w", label, version, rollout.ErrNotFound)
	}
	if err != nil {
		return img, fmt.Errorf("read image of %s %s: %w", label, version, err)
	}
	if err := json.Unmarshal([]byte(opts), &img.ScanOptions); err != nil {
		return img, fmt.Errorf("read image of %s %s: scan options: %w", label, version, err)
	}
	if driftedAt != 0 {
		img.DriftedAt = fromUS(driftedAt)
	}
	if drift.Valid {
		img.Drift = new(rollout.Drift)
		if err := json.Unmarshal([]byte(drift.String), img.Drift); err != nil {
			return img, fmt.Errorf("read image of %s %s: drift: %w", label, version, err)
		}
	}
	return img, nil
}

// GetVerification returns ErrNotFound when never verified.
func (db *DB) GetVerification(ctx context.Context, label, version string) (rollout.Verification, error) {
	var v rollout.Verification
	var body string
	err := db.rd.QueryRowContext(ctx, `SELECT body FROM verifications WHERE label = ? AND version = ?`, label, version).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("verification of %s %s: %w", label, version, rollout.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("read verification of %s %s: %w", label, version, err)
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return v, fmt.Errorf("read verification of %s %s: %w", label, version, err)
	}
	return v, nil
}

// PutVerification upserts v, and with drift marks the version and writes
// audit in the same transaction.
func (db *DB) PutVerification(ctx context.Context, v rollout.Verification, drift *rollout.Drift, audit rollout.AuditEntry) error {
	v, err := rollout.PrepareVerification(v)
	if err != nil {
		return err
	}
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM version_images WHERE label = ? AND version = ?`, v.Label, v.Version).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the version has no image reference", rollout.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO verifications (label, version, result, checked_at, body) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (label, version) DO UPDATE SET result = excluded.result, checked_at = excluded.checked_at, body = excluded.body`,
			v.Label, v.Version, v.Result, us(v.CheckedAt), string(body)); err != nil {
			return err
		}
		if drift == nil {
			return nil
		}
		d, err := json.Marshal(drift)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE version_images SET drift = ?,
			drifted_at = CASE WHEN drifted_at = 0 THEN ? ELSE drifted_at END WHERE label = ? AND version = ?`,
			string(d), us(v.CheckedAt), v.Label, v.Version); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("record verification of %s %s: %w", v.Label, v.Version, err)
	}
	return nil
}
