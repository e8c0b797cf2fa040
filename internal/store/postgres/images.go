package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

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
	err = db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		tag, err := tx.Exec(ctx, `INSERT INTO images (label, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			img.Label, img.CreatedAt)
		return tag.RowsAffected() > 0, err
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
	rows, err := db.pool.Query(ctx, `SELECT label, created_at FROM images WHERE label > $1 ORDER BY label LIMIT $2`,
		after[0], n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list images: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Image, error) {
		var img rollout.Image
		err := r.Scan(&img.Label, &img.CreatedAt)
		img.CreatedAt = utc(img.CreatedAt)
		return img, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list images: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.KeyCursor(out[n-1].Label), nil
	}
	return out, "", nil
}
