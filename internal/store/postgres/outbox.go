package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

var _ rollout.OutboxStore = (*DB)(nil)

// Enqueue inserts items in one transaction; ON CONFLICT on the key's
// unique index, not a read first, so replicas enqueueing one decision at
// once store it once.
func (db *DB) Enqueue(ctx context.Context, items []rollout.OutboxItem) (int, error) {
	items, err := rollout.PrepareOutbox(items, time.Now())
	if err != nil || len(items) == 0 {
		return 0, err
	}
	b := &pgx.Batch{}
	for _, it := range items {
		alert, err := json.Marshal(it.Alert)
		if err != nil {
			return 0, fmt.Errorf("enqueue alert %s: %w", it.Key, err)
		}
		b.Queue(`INSERT INTO outbox (key, url, format, label, kind, alert, created_at, next_attempt_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING`,
			it.Key, it.URL, it.Format, it.Alert.Label, it.Alert.Kind, string(alert), it.CreatedAt, it.NextAttemptAt)
	}
	var n int
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		n = 0
		br := tx.SendBatch(ctx, b)
		for _, it := range items {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return fmt.Errorf("item %s: %w", it.Key, err)
			}
			n += int(tag.RowsAffected())
		}
		return br.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue %d alerts: %w", len(items), err)
	}
	return n, nil
}

const outboxColumns = `id, key, url, format, alert, created_at, attempts, next_attempt_at,
	claimed_by, claimed_until, last_error, delivered_at`

// Claim is the usual queue statement: the candidates are locked with SKIP
// LOCKED, so concurrent claimers take disjoint rows without waiting, and
// a row another claimer committed meanwhile is re-checked against the
// WHERE on its newest version (READ COMMITTED's recheck) and dropped.
func (db *DB) Claim(ctx context.Context, holder string, now time.Time, leaseFor time.Duration, limit int) ([]rollout.OutboxItem, error) {
	if err := rollout.CheckClaim(holder, leaseFor, limit); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `UPDATE outbox SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1
		WHERE id IN (SELECT id FROM outbox
			WHERE delivered_at IS NULL AND next_attempt_at <= $3 AND (claimed_until IS NULL OR claimed_until <= $3)
			ORDER BY next_attempt_at, id LIMIT $4
			FOR UPDATE SKIP LOCKED)
		RETURNING `+outboxColumns, holder, now.Add(leaseFor), now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim outbox items for %s: %w", holder, err)
	}
	out, err := pgx.CollectRows(rows, scanOutbox)
	if err != nil {
		return nil, fmt.Errorf("claim outbox items for %s: %w", holder, err)
	}
	slices.SortFunc(out, func(a, b rollout.OutboxItem) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Ack marks id delivered unless it already is.
func (db *DB) Ack(ctx context.Context, id int64, now time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE outbox SET delivered_at = $1, claimed_by = '', claimed_until = NULL
		WHERE id = $2 AND delivered_at IS NULL`, now, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = db.outboxExists(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("ack outbox item %d: %w", id, err)
	}
	return nil
}

// Fail records the attempt only while holder still holds the claim.
func (db *DB) Fail(ctx context.Context, id int64, holder, lastErr string, nextAttempt time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE outbox SET last_error = $1, next_attempt_at = $2, claimed_by = '', claimed_until = NULL
		WHERE id = $3 AND delivered_at IS NULL AND claimed_by = $4`, lastErr, nextAttempt, id, holder)
	if err == nil && tag.RowsAffected() == 0 {
		if err = db.outboxExists(ctx, id); err == nil {
			err = fmt.Errorf("%w: %s does not hold the claim (it expired and was taken, or the item was delivered)", rollout.ErrConflict, holder)
		}
	}
	if err != nil {
		return fmt.Errorf("record failed delivery of outbox item %d: %w", id, err)
	}
	return nil
}

func (db *DB) outboxExists(ctx context.Context, id int64) error {
	var one int
	err := db.pool.QueryRow(ctx, `SELECT 1 FROM outbox WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: no outbox item %d", rollout.ErrNotFound, id)
	}
	return err
}

// ListOutbox lists items newest first.
func (db *DB) ListOutbox(ctx context.Context, f rollout.OutboxFilter, p rollout.Page) ([]rollout.OutboxItem, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	q := `SELECT ` + outboxColumns + ` FROM outbox WHERE id < $1`
	args := []any{after}
	if f.KeyPrefix != "" {
		args = append(args, f.KeyPrefix)
		q += fmt.Sprintf(` AND starts_with(key, $%d)`, len(args))
	}
	if f.Undelivered {
		q += ` AND delivered_at IS NULL`
	}
	args = append(args, n+1)
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list outbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanOutbox)
	if err != nil {
		return nil, "", fmt.Errorf("list outbox: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.SeqCursor(out[n-1].ID), nil
	}
	return out, "", nil
}

func scanOutbox(row pgx.CollectableRow) (rollout.OutboxItem, error) {
	var it rollout.OutboxItem
	var alert string
	var until, delivered *time.Time
	if err := row.Scan(&it.ID, &it.Key, &it.URL, &it.Format, &alert, &it.CreatedAt, &it.Attempts, &it.NextAttemptAt,
		&it.ClaimedBy, &until, &it.LastError, &delivered); err != nil {
		return it, err
	}
	if err := json.Unmarshal([]byte(alert), &it.Alert); err != nil {
		return it, fmt.Errorf("outbox item %d: stored alert: %w", it.ID, err)
	}
	it.CreatedAt, it.NextAttemptAt = utc(it.CreatedAt), utc(it.NextAttemptAt)
	if until != nil {
		it.ClaimedUntil = utc(*until)
	}
	if delivered != nil {
		it.DeliveredAt = utc(*delivered)
	}
	return it, nil
}
