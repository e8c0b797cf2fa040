package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
)

// AcquireLease takes name for holder when it is free, expired or already
// holder's, in one upsert (the row lock makes racing candidates take
// turns, and each re-checks the condition on the winner's row). The fence
// goes up only when the holder changes (releasing counts as a change).
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, int64, error) {
	if err := rollout.CheckLease(name, holder); err != nil {
		return false, 0, err
	}
	var fence int64
	err := db.pool.QueryRow(ctx, `INSERT INTO leases AS l (name, holder, expires_at, fence) VALUES ($1, $2, $3, 1)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			fence = CASE WHEN l.holder = excluded.holder THEN l.fence ELSE l.fence + 1 END
		WHERE l.holder = excluded.holder OR l.expires_at <= $4
		RETURNING fence`, name, holder, now.Add(ttl), now).Scan(&fence)
	if err == nil {
		return true, fence, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, 0, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT fence FROM leases WHERE name = $1`, name).Scan(&fence); err != nil {
		return false, 0, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	return false, fence, nil
}

// ReleaseLease frees name if holder holds it; otherwise it does nothing.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := db.pool.Exec(ctx, `UPDATE leases SET holder = '', expires_at = '-infinity' WHERE name = $1 AND holder = $2`,
		name, holder)
	if err != nil {
		return fmt.Errorf("release lease %s for %s: %w", name, holder, err)
	}
	return nil
}
