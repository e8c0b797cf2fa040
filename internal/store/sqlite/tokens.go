package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imagegate/imagegate/internal/rollout"
)

// CreateToken stores t; ErrConflict when its ID or hash exists.
func (db *DB) CreateToken(ctx context.Context, t rollout.Token, audit rollout.AuditEntry) error {
	t, err := rollout.PrepareToken(t)
	if err != nil {
		return err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Role, t.Hash, us(t.CreatedAt))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) || isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
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
	var at int64
	err := db.rd.QueryRowContext(ctx, `SELECT id, name, role, hash, created_at FROM tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return t, rollout.ErrNoToken()
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	t.CreatedAt = fromUS(at)
	return t, nil
}

// CountTokens counts tokens of role ("" = every role).
func (db *DB) CountTokens(ctx context.Context, role string) (int, error) {
	var n int
	err := db.rd.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE ? = '' OR role = ?`, role, role).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}
