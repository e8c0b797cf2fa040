package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

const tokenColumns = `id, name, role, hash, created_at, expires_at, last_used_at, revoked_at`

// nullTime stores an optional time: NULL when unset.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func scanToken(sc interface{ Scan(...any) error }) (rollout.Token, error) {
	var t rollout.Token
	var exp, used, rev *time.Time
	if err := sc.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &t.CreatedAt, &exp, &used, &rev); err != nil {
		return t, err
	}
	t.CreatedAt = utc(t.CreatedAt)
	for _, f := range []struct {
		src *time.Time
		dst *time.Time
	}{{exp, &t.ExpiresAt}, {used, &t.LastUsedAt}, {rev, &t.RevokedAt}} {
		if f.src != nil {
			*f.dst = utc(*f.src)
		}
	}
	return t, nil
}

// CreateToken stores t; ErrConflict when its ID or hash exists.
func (db *DB) CreateToken(ctx context.Context, t rollout.Token, audit rollout.AuditEntry) error {
	t, err := rollout.PrepareToken(t)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tokens (id, name, role, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			t.ID, t.Name, t.Role, t.Hash, t.CreatedAt, nullTime(t.ExpiresAt))
		if isCode(err, uniqueViolation) {
			return rollout.ErrTokenExists()
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("create token %s: %w", t.ID, err)
	}
	return nil
}

// TokenByHash returns ErrNotFound for an unknown hash.
func (db *DB) TokenByHash(ctx context.Context, hash []byte) (rollout.Token, error) {
	t, err := scanToken(db.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, rollout.ErrNoToken()
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	return t, nil
}

// CountTokens counts unrevoked tokens of role ("" = every role).
func (db *DB) CountTokens(ctx context.Context, role string) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM tokens WHERE ($1 = '' OR role = $1) AND revoked_at IS NULL`, role).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}

// ListTokens lists tokens by ID, without their hashes.
func (db *DB) ListTokens(ctx context.Context, p rollout.Page) ([]rollout.Token, string, error) {
	after, err := page.AfterKey(p.After, 1)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	rows, err := db.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id > $1 ORDER BY id LIMIT $2`, after[0], n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Token, error) {
		t, err := scanToken(r)
		t.Hash = nil
		return t, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.KeyCursor(out[n-1].ID), nil
	}
	return out, "", nil
}

// RevokeToken marks token id revoked; a revoked token is left as is.
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time, audit rollout.AuditEntry) (rollout.Token, bool, error) {
	var t rollout.Token
	var changed bool
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, at, id)
		if err != nil {
			return err
		}
		t, err = scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("token %s: %w", id, rollout.ErrNotFound)
		}
		if err != nil {
			return err
		}
		t.Hash = nil
		if changed = tag.RowsAffected() == 1; changed {
			return insertAudit(ctx, tx, audit)
		}
		return nil
	})
	if err != nil {
		return rollout.Token{}, false, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return t, changed, nil
}

// TouchToken moves the token's LastUsedAt forward to at.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	if _, err := db.pool.Exec(ctx, `UPDATE tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`, at, id); err != nil {
		return fmt.Errorf("touch token %s: %w", id, err)
	}
	return nil
}
