package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
)

// CreateToken stores t; ErrConflict when its ID or hash exists.
func (db *DB) CreateToken(ctx context.Context, t rollout.Token, audit rollout.AuditEntry) error {
	t, err := rollout.PrepareToken(t)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tokens (id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
			t.ID, t.Name, t.Role, t.Hash, t.CreatedAt)
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
	var t rollout.Token
	err := db.pool.QueryRow(ctx, `SELECT id, name, role, hash, created_at FROM tokens WHERE hash = $1`, hash).
		Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &t.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, rollout.ErrNoToken()
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	t.CreatedAt = utc(t.CreatedAt)
	return t, nil
}

// CountTokens counts tokens of role ("" = every role).
func (db *DB) CountTokens(ctx context.Context, role string) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM tokens WHERE $1 = '' OR role = $1`, role).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}
