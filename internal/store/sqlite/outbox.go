package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

var _ rollout.OutboxStore = (*DB)(nil)

// Enqueue inserts items in one durable transaction; keys already stored
// are skipped by the unique index, not by a read first, so two replicas
// enqueueing one decision at once still store it once.
func (db *DB) Enqueue(ctx context.Context, items []rollout.OutboxItem) (int, error) {
	items, err := rollout.PrepareOutbox(items, time.Now())
	if err != nil || len(items) == 0 {
		return 0, err
	}
	alerts := make([]string, len(items))
	for i, it := range items {
		b, err := json.Marshal(it.Alert)
		if err != nil {
			return 0, fmt.Errorf("enqueue alert %s: %w", it.Key, err)
		}
		alerts[i] = string(b)
	}
	var n int
	err = db.write(ctx, func(tx *sql.Tx) error {
		n = 0
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO outbox
			(key, url, format, label, kind, alert, created_at, next_attempt_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, it := range items {
			res, err := stmt.ExecContext(ctx, it.Key, it.URL, it.Format, it.Alert.Label, it.Alert.Kind, alerts[i],
				us(it.CreatedAt), us(it.NextAttemptAt))
			if err != nil {
				return fmt.Errorf("item %s: %w", it.Key, err)
			}
			added, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(added)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue %d alerts: %w", len(items), err)
	}
	return n, nil
}

const outboxColumns = `id, key, url, format, alert, created_at, attempts, next_attempt_at,
	claimed_by, claimed_until, last_error, delivered_at`

// Claim selects and marks in one statement on the single writer, so two
// claimers (goroutines, or processes through BEGIN IMMEDIATE) take turns
// and the second sees the first's claims.
func (db *DB) Claim(ctx context.Context, holder string, now time.Time, leaseFor time.Duration, limit int) ([]rollout.OutboxItem, error) {
	if err := rollout.CheckClaim(holder, leaseFor, limit); err != nil {
		return nil, err
	}
	var out []rollout.OutboxItem
	err := db.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1
			WHERE id IN (SELECT id FROM outbox
				WHERE delivered_at IS NULL AND next_attempt_at <= ? AND claimed_until <= ?
				ORDER BY next_attempt_at, id LIMIT ?)
			RETURNING `+outboxColumns, holder, us(now.Add(leaseFor)), us(now), us(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			it, err := scanOutbox(rows)
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim outbox items for %s: %w", holder, err)
	}
	// RETURNING's order is unspecified.
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
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET delivered_at = ?, claimed_by = '', claimed_until = 0
			WHERE id = ? AND delivered_at IS NULL`, us(now), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		return outboxExists(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("ack outbox item %d: %w", id, err)
	}
	return nil
}

// Fail records the attempt only while holder still holds the claim.
func (db *DB) Fail(ctx context.Context, id int64, holder, lastErr string, nextAttempt time.Time) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET last_error = ?, next_attempt_at = ?, claimed_by = '', claimed_until = 0
			WHERE id = ? AND delivered_at IS NULL AND claimed_by = ?`, lastErr, us(nextAttempt), id, holder)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		if err := outboxExists(ctx, tx, id); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s does not hold the claim (it expired and was taken, or the item was delivered)", rollout.ErrConflict, holder)
	})
	if err != nil {
		return fmt.Errorf("record failed delivery of outbox item %d: %w", id, err)
	}
	return nil
}

func outboxExists(ctx context.Context, tx *sql.Tx, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM outbox WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
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
	q := `SELECT ` + outboxColumns + ` FROM outbox WHERE id < ?`
	args := []any{after}
	if f.KeyPrefix != "" {
		q += ` AND substr(key, 1, length(?)) = ?`
		args = append(args, f.KeyPrefix, f.KeyPrefix)
	}
	if f.Undelivered {
		q += ` AND delivered_at IS NULL`
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, n+1)
	rows, err := db.rd.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list outbox: %w", err)
	}
	defer rows.Close()
	var out []rollout.OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list outbox: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list outbox: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.SeqCursor(out[n-1].ID), nil
	}
	return out, "", nil
}

func scanOutbox(rows *sql.Rows) (rollout.OutboxItem, error) {
	var it rollout.OutboxItem
	var alert string
	var created, next, until int64
	var delivered sql.NullInt64
	if err := rows.Scan(&it.ID, &it.Key, &it.URL, &it.Format, &alert, &created, &it.Attempts, &next,
		&it.ClaimedBy, &until, &it.LastError, &delivered); err != nil {
		return it, err
	}
	if err := json.Unmarshal([]byte(alert), &it.Alert); err != nil {
		return it, fmt.Errorf("outbox item %d: stored alert: %w", it.ID, err)
	}
	it.CreatedAt, it.NextAttemptAt = fromUS(created), fromUS(next)
	if until != 0 {
		it.ClaimedUntil = fromUS(until)
	}
	if delivered.Valid {
		it.DeliveredAt = fromUS(delivered.Int64)
	}
	return it, nil
}
