package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
)

var _ rollout.VerifyStore = (*DB)(nil)

// insertVersionImage writes v.Image in CreateVersion's transaction.
func insertVersionImage(ctx context.Context, tx pgx.Tx, v rollout.Version) error {
	if v.Image == nil {
		return nil
	}
	opts, err := json.Marshal(v.Image.ScanOptions)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO version_images (label, version, ref, repository, tag, digest, scan_options)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, v.Label, v.Version, v.Image.Ref, v.Image.Repository, v.Image.Tag, v.Image.Digest, string(opts))
	return err
}

// VersionImage returns ErrNotFound when label+version has no image.
func (db *DB) VersionImage(ctx context.Context, label, version string) (rollout.ImageRef, error) {
	var img rollout.ImageRef
	var opts string
	var drift *string
	var driftedAt *time.Time
	err := db.pool.QueryRow(ctx, `SELECT ref, repository, tag, digest, scan_options, drifted_at, drift
		FROM version_images WHERE label = $1 AND version = $2`, label, version).
		Scan(&img.Ref, &img.Repository, &img.Tag, &img.Digest, &opts, &driftedAt, &drift)
	if errors.Is(err, pgx.ErrNoRows) {
		return img, fmt.Errorf("image of %s %s: %w", label, version, rollout.ErrNotFound)
	}
	if err != nil {
		return img, fmt.Errorf("read image of %s %s: %w", label, version, err)
	}
	if err := json.Unmarshal([]byte(opts), &img.ScanOptions); err != nil {
		return img, fmt.Errorf("read image of %s %s: scan options: %w", label, version, err)
	}
	if driftedAt != nil {
		img.DriftedAt = driftedAt.UTC()
	}
	if drift != nil {
		img.Drift = new(rollout.Drift)
		if err := json.Unmarshal([]byte(*drift), img.Drift); err != nil {
			return img, fmt.Errorf("read image of %s %s: drift: %w", label, version, err)
		}
	}
	return img, nil
}

// GetVerification returns ErrNotFound when never verified.
func (db *DB) GetVerification(ctx context.Context, label, version string) (rollout.Verification, error) {
	var v rollout.Verification
	var body string
	err := db.pool.QueryRow(ctx, `SELECT body FROM verifications WHERE label = $1 AND version = $2`, label, version).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO verifications (label, version, result, checked_at, body)
			SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM version_images WHERE label = $1 AND version = $2)
			ON CONFLICT (label, version) DO UPDATE SET result = excluded.result, checked_at = excluded.checked_at, body = excluded.body`,
			v.Label, v.Version, v.Result, v.CheckedAt, string(body))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: the version has no image reference", rollout.ErrNotFound)
		}
		if drift == nil {
			return nil
		}
		d, err := json.Marshal(drift)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE version_images SET drift = $1, drifted_at = COALESCE(drifted_at, $2)
			WHERE label = $3 AND version = $4`, string(d), v.CheckedAt, v.Label, v.Version); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("record verification of %s %s: %w", v.Label, v.Version, err)
	}
	return nil
}
