package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

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
	err = db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (id, org, label, url, format, org_target, filters, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, s.ID, s.Org, s.Label, s.URL, s.Format, b2i(s.OrgTarget), string(filters), s.CreatedBy, us(s.CreatedAt)); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return s, fmt.Errorf("create subscription of %s to %s: %w", s.Org, s.Label, err)
	}
	return s, nil
}

// afterAsc decodes an ascending-order cursor; none means from the start.
func afterAsc(after string) (int64, error) {
	if after == "" {
		return 0, nil
	}
	return page.AfterSeq(after)
}

// ListSubscriptions pages in creation order.
func (db *DB) ListSubscriptions(ctx context.Context, f rollout.SubscriptionFilter, p rollout.Page) ([]rollout.Subscription, string, error) {
	after, err := afterAsc(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	q := `SELECT seq, id, org, label, url, format, org_target, filters, created_by, created_at FROM subscriptions WHERE seq > ?`
	args := []any{after}
	if f.Org != "" {
		q += ` AND org = ?`
		args = append(args, f.Org)
	}
	if f.Label != "" {
		q += ` AND label = ?`
		args = append(args, f.Label)
	}
	q += ` ORDER BY seq LIMIT ?`
	args = append(args, n+1)
	rows, err := db.rd.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []rollout.Subscription
	var seqs []int64
	for rows.Next() {
		var s rollout.Subscription
		var seq, at int64
		var orgTarget int
		var filters string
		if err := rows.Scan(&seq, &s.ID, &s.Org, &s.Label, &s.URL, &s.Format, &orgTarget, &filters, &s.CreatedBy, &at); err != nil {
			return nil, "", fmt.Errorf("list subscriptions: %w", err)
		}
		if err := json.Unmarshal([]byte(filters), &s.Filters); err != nil {
			return nil, "", fmt.Errorf("list subscriptions: filters of %s: %w", s.ID, err)
		}
		s.OrgTarget, s.CreatedAt = orgTarget != 0, fromUS(at)
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
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM subscriptions WHERE org = ? AND id = ?`, org, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("%w: organisation %s has no subscription %s", rollout.ErrNotFound, org, id))
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
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notice_runs (rollout_id, label, version, notices, sent_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (rollout_id) DO NOTHING`, run.RolloutID, run.Label, run.Version, run.Notices, us(run.SentAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if added = n > 0; err != nil || !added {
			return err
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
	var at int64
	err := db.rd.QueryRowContext(ctx, `SELECT rollout_id, label, version, notices, sent_at FROM notice_runs WHERE rollout_id = ?`, rolloutID).
		Scan(&run.RolloutID, &run.Label, &run.Version, &run.Notices, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return run, fmt.Errorf("notices of %s: %w", rolloutID, rollout.ErrNotFound)
	}
	if err != nil {
		return run, fmt.Errorf("read notices of %s: %w", rolloutID, err)
	}
	run.SentAt = fromUS(at)
	return run, nil
}
