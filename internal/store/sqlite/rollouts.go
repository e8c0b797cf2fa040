package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

const rolloutCols = `id, label, version, from_version, state, ring, ring_started_at, rings, expedited,
	supersedes, forced, force_reason, approved, reason, created_at, updated_at, revision, auto_rollback`

// CreateRollout inserts r. An empty ID becomes "r-<n>". ErrNotFound when
// the version does not exist; ErrConflict when the ID exists, when the
// label already has an unfinished rollout (pending, baking, paused,
// halted) that is not the one superseded, or when supersede changed since
// it was read.
func (db *DB) CreateRollout(ctx context.Context, r *rollout.Rollout, supersede *rollout.Rollout, audit rollout.AuditEntry) error {
	created, err := rollout.PrepareRollout(*r, supersede)
	if err != nil {
		return err
	}
	rings, err := json.Marshal(r.Rings)
	if err != nil {
		return fmt.Errorf("create rollout of %s %s: %w", r.Label, r.Version, err)
	}
	var old rollout.Rollout
	err = db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if err := versionExists(ctx, tx, r.Label, r.Version); err != nil {
			return false, err
		}
		if supersede != nil {
			old = rollout.Superseded(*supersede, created)
			if err := updateRollout(ctx, tx, &old); err != nil {
				return false, fmt.Errorf("supersede %s: %w", supersede.ID, err)
			}
		}
		if created.ID == "" {
			var seq int64
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM rollouts`).Scan(&seq); err != nil {
				return false, err
			}
			created.ID = rollout.RolloutID(seq)
		}
		if supersede != nil {
			if err := insertAudit(ctx, tx, rollout.SupersedeAudit(audit, *supersede, created)); err != nil {
				return false, err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rollouts (`+rolloutCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			created.ID, created.Label, created.Version, created.FromVersion, created.State, created.Ring,
			us(created.RingStartedAt), string(rings), b2i(created.Expedited), created.Supersedes,
			b2i(created.Forced), created.ForceReason, created.Approved, created.Reason,
			us(created.CreatedAt), us(created.UpdatedAt), created.Revision, b2i(created.AutoRollback))
		switch {
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) && strings.Contains(err.Error(), "rollouts.label"):
			return false, rollout.ErrUnfinishedRollout(r.Label)
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
			return false, rollout.ErrRolloutExists(created.ID)
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("create rollout of %s %s: %w", r.Label, r.Version, err)
	}
	*r = rollout.AsStored(created)
	if supersede != nil {
		*supersede = rollout.AsStored(old)
	}
	return nil
}

// GetRollout returns ErrNotFound when absent.
func (db *DB) GetRollout(ctx context.Context, id string) (rollout.Rollout, error) {
	row := db.rd.QueryRowContext(ctx, `SELECT `+rolloutCols+` FROM rollouts WHERE id = ?`, id)
	r, err := scanRollout(row)
	if errors.Is(err, sql.ErrNoRows) {
		return r, rollout.ErrNoRollout(id)
	}
	if err != nil {
		return r, fmt.Errorf("get rollout %s: %w", id, err)
	}
	return r, nil
}

func scanRollout(s scanner, extra ...any) (rollout.Rollout, error) {
	var r rollout.Rollout
	var ringStarted, created, updated int64
	var rings string
	var expedited, forced, autoRollback int
	dest := []any{&r.ID, &r.Label, &r.Version, &r.FromVersion, &r.State, &r.Ring, &ringStarted, &rings, &expedited,
		&r.Supersedes, &forced, &r.ForceReason, &r.Approved, &r.Reason, &created, &updated, &r.Revision, &autoRollback}
	if err := s.Scan(append(dest, extra...)...); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(rings), &r.Rings); err != nil {
		return r, fmt.Errorf("decode rings of rollout %s: %w", r.ID, err)
	}
	r.RingStartedAt = fromUS(ringStarted)
	r.CreatedAt = fromUS(created)
	r.UpdatedAt = fromUS(updated)
	r.Expedited = expedited != 0
	r.Forced = forced != 0
	r.AutoRollback = autoRollback != 0
	return r, nil
}

// ListRollouts lists rollouts newest first.
func (db *DB) ListRollouts(ctx context.Context, label string, states []rollout.State, p rollout.Page) ([]rollout.Rollout, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	q := `SELECT ` + rolloutCols + `, seq FROM rollouts WHERE seq < ?`
	args := []any{after}
	if label != "" {
		q += ` AND label = ?`
		args = append(args, label)
	}
	if len(states) > 0 {
		q += ` AND state IN (?` + strings.Repeat(`, ?`, len(states)-1) + `)`
		for _, s := range states {
			args = append(args, s)
		}
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, n+1)
	rows, err := db.rd.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list rollouts: %w", err)
	}
	defer rows.Close()
	var out []rollout.Rollout
	var seqs []int64
	for rows.Next() {
		var seq int64
		r, err := scanRollout(rows, &seq)
		if err != nil {
			return nil, "", fmt.Errorf("list rollouts: %w", err)
		}
		out = append(out, r)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list rollouts: %w", err)
	}
	if len(out) > n {
		return out[:n], page.SeqCursor(seqs[n-1]), nil
	}
	return out, "", nil
}

// UpdateRollout writes r if nobody changed it since r.Revision was read.
// ID, Label, Version and CreatedAt never change.
func (db *DB) UpdateRollout(ctx context.Context, r *rollout.Rollout, audit rollout.AuditEntry) error {
	next := rollout.PrepareUpdate(*r)
	err := db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		return true, updateRollout(ctx, tx, &next)
	})
	if err != nil {
		return fmt.Errorf("update rollout %s: %w", r.ID, err)
	}
	*r = rollout.AsStored(next)
	return nil
}

// updateRollout is the compare-and-set on revision; r.Revision is
// incremented on success.
func updateRollout(ctx context.Context, tx *sql.Tx, r *rollout.Rollout) error {
	rings, err := json.Marshal(r.Rings)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE rollouts SET from_version = ?, state = ?, ring = ?, ring_started_at = ?,
		rings = ?, expedited = ?, supersedes = ?, forced = ?, force_reason = ?, approved = ?, reason = ?,
		updated_at = ?, auto_rollback = ?, revision = revision + 1
		WHERE id = ? AND revision = ?`,
		r.FromVersion, r.State, r.Ring, us(r.RingStartedAt), string(rings), b2i(r.Expedited), r.Supersedes,
		b2i(r.Forced), r.ForceReason, r.Approved, r.Reason, us(r.UpdatedAt), b2i(r.AutoRollback), r.ID, r.Revision)
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return rollout.ErrAnotherUnfinished(r.Label)
	}
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		r.Revision++
		return nil
	}
	var rev int64
	err = tx.QueryRowContext(ctx, `SELECT revision FROM rollouts WHERE id = ?`, r.ID).Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		return rollout.ErrNoRollout(r.ID)
	}
	if err != nil {
		return err
	}
	return rollout.ErrStaleRevision(r.ID, rev, r.Revision)
}

// LastCompleted returns the version of label's newest completed rollout.
func (db *DB) LastCompleted(ctx context.Context, label string) (string, error) {
	var v string
	err := db.rd.QueryRowContext(ctx, `SELECT version FROM rollouts WHERE label = ? AND state = ?
		ORDER BY seq DESC LIMIT 1`, label, rollout.StateCompleted).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("last completed rollout of %s: %w", label, err)
	}
	return v, nil
}
