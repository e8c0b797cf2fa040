package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
)

// CreateSession stores s; ErrConflict when its hash exists.
func (db *DB) CreateSession(ctx context.Context, s rollout.Session) error {
	s, err := rollout.PrepareSession(s)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO ui_sessions (hash, token_hash, token_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.Hash, s.TokenHash, s.TokenID, s.CSRF, s.CreatedAt, s.ExpiresAt)
	if isCode(err, uniqueViolation) {
		return fmt.Errorf("create session: a session with this secret exists: %w", rollout.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByHash returns ErrNotFound for an unknown hash.
func (db *DB) SessionByHash(ctx context.Context, hash []byte) (rollout.Session, error) {
	s := rollout.Session{Hash: hash}
	err := db.pool.QueryRow(ctx, `SELECT token_hash, token_id, csrf, created_at, expires_at FROM ui_sessions WHERE hash = $1`, hash).
		Scan(&s.TokenHash, &s.TokenID, &s.CSRF, &s.CreatedAt, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return rollout.Session{}, fmt.Errorf("session: %w", rollout.ErrNotFound)
	}
	if err != nil {
		return rollout.Session{}, fmt.Errorf("look up session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt = utc(s.CreatedAt), utc(s.ExpiresAt)
	return s, nil
}

// DeleteSession removes the session of hash, if any.
func (db *DB) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM ui_sessions WHERE hash = $1`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions expired at now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM ui_sessions WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
