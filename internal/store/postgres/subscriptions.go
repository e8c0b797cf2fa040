package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

var _ rollout.SubscriptionStore = (*DB)(nil)

// CreateSubscription inserts s with its audit entry.
func (db *DB) CreateSubscription(ctx context.Context, s rollout.Subscription, audit rollout.AuditEntry) (rollout.Subscription, error) {
	s, err := rollout.PrepareSubscription(s)
	if err != nil {
		return s, err
	}
	filters, err := json.Marshal(s.Filters)
	if err != nil {
		return s, err
	}
	audit.Subject += "/" + s.ID
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO subscriptions (id, org, label, url, format, org_target, filters, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, s.ID, s.Org, s.Label, s.URL, s.Format, s.OrgTarget, string(filters), s.CreatedBy, s.CreatedAt); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return s, fmt.Errorf("create subscription of %s to %s: %w", s.Org, s.Label, err)
	}
	return s, nil
}

// ListSubscriptions pages in creation order.
func (db *DB) ListSubscriptions(ctx context.Context, f rollout.SubscriptionFilter, p rollout.Page) ([]rollout.Subscription, string, error) {
	var after int64
	if p.After != "" {
		var err error
		if after, err = page.AfterSeq(p.After); err != nil {
			return nil, "", err
		}
	}
	n := page.Limit(p)
	q := `SELECT seq, id, org, label, url, format, org_target, filters, created_by, created_at FROM subscriptions WHERE seq > $1`
	args := []any{after}
	if f.Org != "" {
		args = append(args, f.Org)
		q += ` AND org = $` + strconv.Itoa(len(args))
	}
	if f.Label != "" {
		args = append(args, f.Label)
		q += ` AND label = $` + strconv.Itoa(len(args))
	}
	args = append(args, n+1)
	q += ` ORDER BY seq LIMIT $` + strconv.Itoa(len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []rollout.Subscription
	var seqs []int64
	for rows.Next() {
		var s rollout.Subscription
		var seq int64
		var filters string
		if err := rows.Scan(&seq, &s.ID, &s.Org, &s.Label, &s.URL, &s.Format, &s.OrgTarget, &filters, &s.CreatedBy, &s.CreatedAt); err != nil {
			return nil, "", fmt.Errorf("list subscriptions: %w", err)
		}
		if err := json.Unmarshal([]byte(filters), &s.Filters); err != nil {
			return nil, "", fmt.Errorf("list subscriptions: filters of %s: %w", s.ID, err)
		}
		s.CreatedAt = s.CreatedAt.UTC()
		out = append(out, s)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list subscriptions: %w", err)
	}
	if len(out) > n {
		return out[:n], page.SeqCursor(seqs[n-1]), nil
	}
	return out, "", nil
}

// DeleteSubscription removes org's subscription id.
func (db *DB) DeleteSubscription(ctx context.Context, org, id string, audit rollout.AuditEntry) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM subscriptions WHERE org = $1 AND id = $2`, org, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: organisation %s has no subscription %s", rollout.ErrNotFound, org, id)
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	return nil
}

// RecordNotices inserts run unless its rollout is recorded.
func (db *DB) RecordNotices(ctx context.Context, run rollout.NoticeRun, audit rollout.AuditEntry) (bool, error) {
	if run.RolloutID == "" {
		return false, fmt.Errorf("record notices: %w: the rollout id is required", rollout.ErrInvalid)
	}
	var added bool
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO notice_runs (rollout_id, label, version, notices, sent_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (rollout_id) DO NOTHING`, run.RolloutID, run.Label, run.Version, run.Notices, run.SentAt)
		if err != nil {
			return err
		}
		if added = tag.RowsAffected() > 0; !added {
			return nil
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return false, fmt.Errorf("record notices of %s: %w", run.RolloutID, err)
	}
	return added, nil
}

// NoticesSent returns ErrNotFound before rolloutID's notices went out.
func (db *DB) NoticesSent(ctx context.Context, rolloutID string) (rollout.NoticeRun, error) {
	var run rollout.NoticeRun
	err := db.pool.QueryRow(ctx, `SELECT rollout_id, label, version, notices, sent_at FROM notice_runs WHERE rollout_id = $1`, rolloutID).
		Scan(&run.RolloutID, &run.Label, &run.Version, &run.Notices, &run.SentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return run, fmt.Errorf("notices of %s: %w", rolloutID, rollout.ErrNotFound)
	}
	if err != nil {
		return run, fmt.Errorf("read notices of %s: %w", rolloutID, err)
	}
	run.SentAt = run.SentAt.UTC()
	return run, nil
}
