package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
)

// PutRings replaces label's plan; an empty plan removes it, so the label
// falls back to the global plan.
func (db *DB) PutRings(ctx context.Context, label string, rings []rollout.Ring, audit rollout.AuditEntry) error {
	b, err := json.Marshal(rings)
	if err != nil {
		return fmt.Errorf("put rings of %q: %w", label, err)
	}
	err = db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		if len(rings) == 0 {
			_, err := tx.Exec(ctx, `DELETE FROM rings WHERE label = $1`, label)
			return err == nil, err
		}
		_, err := tx.Exec(ctx, `INSERT INTO rings (label, rings) VALUES ($1, $2)
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
	err := db.pool.QueryRow(ctx, `SELECT rings FROM rings WHERE label IN ($1, '') ORDER BY label DESC LIMIT 1`, label).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
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
