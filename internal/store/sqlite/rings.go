package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imagegate/imagegate/internal/rollout"
)

// PutRings replaces label's plan; an empty plan removes it, so the label
// falls back to the global plan.
func (db *DB) PutRings(ctx context.Context, label string, rings []rollout.Ring, audit rollout.AuditEntry) error {
	b, err := json.Marshal(rings)
	if err != nil {
		return fmt.Errorf("put rings of %q: %w", label, err)
	}
	err = db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if len(rings) == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM rings WHERE label = ?`, label)
			return err == nil, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rings (label, rings) VALUES (?, ?)
			ON CONFLICT (label) DO UPDATE SET rings = excluded.rings`, label, string(b))
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("put rings of %q: %w", label, err)
	}
	return nil
}

// GetRings returns label's plan, else the global one.
func (db *DB) GetRings(ctx context.Context, label string) ([]rollout.Ring, error) {
	var b string
	err := db.rd.QueryRowContext(ctx, `SELECT rings FROM rings WHERE label IN (?, '')
		ORDER BY label DESC LIMIT 1`, label).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, rollout.ErrNoRings(label)
	}
	if err != nil {
		return nil, fmt.Errorf("get rings of %q: %w", label, err)
	}
	var rings []rollout.Ring
	if err := json.Unmarshal([]byte(b), &rings); err != nil {
		return nil, fmt.Errorf("decode rings of %q: %w", label, err)
	}
	return rings, nil
}
