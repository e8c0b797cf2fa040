package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// AcquireLease takes name for holder when it is free, expired or already
// holder's. The fence goes up only when the holder changes (releasing
// counts as a change), so a stale leader's fence is always lower.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, int64, error) {
	if err := rollout.CheckLease(name, holder); err != nil {
		return false, 0, err
	}
	var ok bool
	var fence int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO leases (name, holder, expires_at, fence) VALUES (?, ?, ?, 1)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
				fence = CASE WHEN leases.holder = excluded.holder THEN leases.fence ELSE leases.fence + 1 END
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
			RETURNING fence`, name, holder, us(now.Add(ttl)), us(now)).Scan(&fence)
		if err == nil {
			ok = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT fence FROM leases WHERE name = ?`, name).Scan(&fence)
	})
	if err != nil {
		return false, 0, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	return ok, fence, nil
}

// ReleaseLease frees name if holder holds it; otherwise it does nothing.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE leases SET holder = '', expires_at = ? WHERE name = ? AND holder = ?`,
			us(time.Time{}), name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s for %s: %w", name, holder, err)
	}
	return nil
}
