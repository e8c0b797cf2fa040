package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imagegate/imagegate/internal/rollout"
)

// CreateSession stores s; ErrConflict when its hash exists.
func (db *DB) CreateSession(ctx context.Context, s rollout.Session) error {
	s, err := rollout.PrepareSession(s)
	if err != nil {
		return err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO ui_sessions (hash, token_hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			s.Hash, s.TokenHash, s.TokenID, s.CSRF, us(s.CreatedAt), us(s.ExpiresAt))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("a session with this secret exists: %w", rollout.ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByHash returns ErrNotFound for an unknown hash.
func (db *DB) SessionByHash(ctx context.Context, hash []byte) (rollout.Session, error) {
	s := rollout.Session{Hash: hash}
	var at, exp int64
	err := db.rd.QueryRowContext(ctx, `SELECT token_hash, token_id, csrf, created_at, expires_at FROM ui_sessions WHERE hash = ?`, hash).
		Scan(&s.TokenHash, &s.TokenID, &s.CSRF, &at, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return rollout.Session{}, fmt.Errorf("session: %w", rollout.ErrNotFound)
	}
	if err != nil {
		return rollout.Session{}, fmt.Errorf("look up session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt = fromUS(at), fromUS(exp)
	return s, nil
}

// DeleteSession removes the session of hash, if any.
func (db *DB) DeleteSession(ctx context.Context, hash []byte) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM ui_sessions WHERE hash = ?`, hash)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions expired at now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM ui_sessions WHERE expires_at <= ?`, us(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(n), nil
}
