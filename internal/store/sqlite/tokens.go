package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

// usz stores an optional time: 0 when unset.
func usz(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return us(t)
}

func fromUSZ(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromUS(v)
}

const tokenColumns = `id, name, role, hash, created_at, expires_at, last_used_at, revoked_at`

func scanToken(sc interface{ Scan(...any) error }) (rollout.Token, error) {
	var t rollout.Token
	var at, exp, used, rev int64
	if err := sc.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &at, &exp, &used, &rev); err != nil {
		return t, err
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt = fromUS(at), fromUSZ(exp), fromUSZ(used), fromUSZ(rev)
	return t, nil
}

// CreateToken stores t; ErrConflict when its ID or hash exists.
func (db *DB) CreateToken(ctx context.Context, t rollout.Token, audit rollout.AuditEntry) error {
	t, err := rollout.PrepareToken(t)
	if err != nil {
		return err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, name, role, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Role, t.Hash, us(t.CreatedAt), usz(t.ExpiresAt))
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
	t, err := scanToken(db.rd.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
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
	err := db.rd.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE (? = '' OR role = ?) AND revoked_at = 0`, role, role).Scan(&n)
	if err != nil {
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
	rows, err := db.rd.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id > ? ORDER BY id LIMIT ?`, after[0], n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []rollout.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list tokens: %w", err)
		}
		t.Hash = nil
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
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
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, us(at), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		t, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("token %s: %w", id, rollout.ErrNotFound)
		}
		if err != nil {
			return err
		}
		t.Hash = nil
		if changed = n == 1; changed {
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
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ? AND last_used_at < ?`, us(at), id, us(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("touch token %s: %w", id, err)
	}
	return nil
}
