package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
	err = db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		if supersede != nil {
			old = rollout.Superseded(*supersede, created)
			if err := updateRollout(ctx, tx, &old); err != nil {
				return false, fmt.Errorf("supersede %s: %w", supersede.ID, err)
			}
		}
		var seq int64
		if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('rollouts', 'seq'))`).Scan(&seq); err != nil {
			return false, err
		}
		if created.ID == "" {
			created.ID = rollout.RolloutID(seq)
		}
		if supersede != nil {
			if err := insertAudit(ctx, tx, rollout.SupersedeAudit(audit, *supersede, created)); err != nil {
				return false, err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO rollouts (seq, `+rolloutCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			seq, created.ID, created.Label, created.Version, created.FromVersion, created.State, created.Ring,
			created.RingStartedAt, string(rings), created.Expedited, created.Supersedes,
			created.Forced, created.ForceReason, created.Approved, created.Reason,
			created.CreatedAt, created.UpdatedAt, created.Revision, created.AutoRollback)
		switch {
		case isCode(err, uniqueViolation) && constraint(err) == "rollouts_one_active":
			return false, rollout.ErrUnfinishedRollout(r.Label)
		case isCode(err, uniqueViolation):
			return false, rollout.ErrRolloutExists(created.ID)
		case isCode(err, foreignKeyViolation):
			return false, rollout.ErrVersionMissing(r.Label, r.Version)
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
	r, err := scanRollout(db.pool.QueryRow(ctx, `SELECT `+rolloutCols+` FROM rollouts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, rollout.ErrNoRollout(id)
	}
	if err != nil {
		return r, fmt.Errorf("get rollout %s: %w", id, err)
	}
	return r, nil
}

func scanRollout(s pgx.Row, extra ...any) (rollout.Rollout, error) {
	var r rollout.Rollout
	var rings string
	dest := []any{&r.ID, &r.Label, &r.Version, &r.FromVersion, &r.State, &r.Ring, &r.RingStartedAt, &rings, &r.Expedited,
		&r.Supersedes, &r.Forced, &r.ForceReason, &r.Approved, &r.Reason, &r.CreatedAt, &r.UpdatedAt, &r.Revision,
		&r.AutoRollback}
	if err := s.Scan(append(dest, extra...)...); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(rings), &r.Rings); err != nil {
		return r, fmt.Errorf("decode rings of rollout %s: %w", r.ID, err)
	}
	r.RingStartedAt = utc(r.RingStartedAt)
	r.CreatedAt = utc(r.CreatedAt)
	r.UpdatedAt = utc(r.UpdatedAt)
	return r, nil
}

// ListRollouts lists rollouts newest first.
func (db *DB) ListRollouts(ctx context.Context, label string, states []rollout.State, p rollout.Page) ([]rollout.Rollout, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	if states == nil {
		states = []rollout.State{} // nil would be SQL NULL
	}
	rows, err := db.pool.Query(ctx, `SELECT `+rolloutCols+`, seq FROM rollouts
		WHERE seq < $1 AND ($2 = '' OR label = $2) AND (cardinality($3::text[]) = 0 OR state = ANY($3))
		ORDER BY seq DESC LIMIT $4`, after, label, states, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list rollouts: %w", err)
	}
	var seqs []int64
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rollout.Rollout, error) {
		var seq int64
		r, err := scanRollout(row, &seq)
		seqs = append(seqs, seq)
		return r, err
	})
	if err != nil {
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
	err := db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
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
func updateRollout(ctx context.Context, tx pgx.Tx, r *rollout.Rollout) error {
	rings, err := json.Marshal(r.Rings)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE rollouts SET from_version = $1, state = $2, ring = $3, ring_started_at = $4,
		rings = $5, expedited = $6, supersedes = $7, forced = $8, force_reason = $9, approved = $10, reason = $11,
		updated_at = $12, auto_rollback = $13, revision = revision + 1
		WHERE id = $14 AND revision = $15`,
		r.FromVersion, r.State, r.Ring, r.RingStartedAt, string(rings), r.Expedited, r.Supersedes,
		r.Forced, r.ForceReason, r.Approved, r.Reason, r.UpdatedAt, r.AutoRollback, r.ID, r.Revision)
	if isCode(err, uniqueViolation) {
		return rollout.ErrAnotherUnfinished(r.Label)
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		r.Revision++
		return nil
	}
	var rev int64
	err = tx.QueryRow(ctx, `SELECT revision FROM rollouts WHERE id = $1`, r.ID).Scan(&rev)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := db.pool.QueryRow(ctx, `SELECT version FROM rollouts WHERE label = $1 AND state = $2
		ORDER BY seq DESC LIMIT 1`, label, rollout.StateCompleted).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("last completed rollout of %s: %w", label, err)
	}
	return v, nil
}
