package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

// PutImage creates the image; an existing one is left as is, with no
// audit entry.
func (db *DB) PutImage(ctx context.Context, img rollout.Image, audit rollout.AuditEntry) error {
	img, err := rollout.PrepareImage(img)
	if err != nil {
		return err
	}
	err = db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, `INSERT INTO images (label, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			img.Label, us(img.CreatedAt))
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
	})
	if err != nil {
		return fmt.Errorf("put image %s: %w", img.Label, err)
	}
	return nil
}

// ListImages lists images by label.
func (db *DB) ListImages(ctx context.Context, p rollout.Page) ([]rollout.Image, string, error) {
	after, err := page.AfterKey(p.After, 1)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	rows, err := db.rd.QueryContext(ctx, `SELECT label, created_at FROM images WHERE label > ? ORDER BY label LIMIT ?`,
		after[0], n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	var out []rollout.Image
	for rows.Next() {
		var img rollout.Image
		var at int64
		if err := rows.Scan(&img.Label, &at); err != nil {
			return nil, "", fmt.Errorf("list images: %w", err)
		}
		img.CreatedAt = fromUS(at)
		out = append(out, img)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list images: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.KeyCursor(out[n-1].Label), nil
	}
	return out, "", nil
}
