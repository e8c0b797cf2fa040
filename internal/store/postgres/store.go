package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

// PutImage creates the image; an existing one is left as is, with no
// audit entry.
func (db *DB) PutImage(ctx context.Context, img rollout.Image, audit rollout.AuditEntry) error {
	if err := rollout.CheckImage(img); err != nil {
		return err
	}
	if img.CreatedAt.IsZero() {
		img.CreatedAt = time.Now()
	}
	err := db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
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

// CreateVersion registers v. ErrNotFound when its image does not exist
// (PutImage first), ErrConflict when label+version exists.
func (db *DB) CreateVersion(ctx context.Context, v rollout.Version, audit rollout.AuditEntry) error {
	if err := rollout.CheckVersion(v); err != nil {
		return err
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now()
	}
	err := db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		_, err := tx.Exec(ctx, `INSERT INTO versions
			(label, version, gate, snapshot, check_report, revoked, revoked_reason, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			v.Label, v.Version, v.Gate, blob(v.Snapshot), blob(v.CheckReport), v.Revoked, v.RevokedReason, v.CreatedAt)
		switch {
		case isCode(err, uniqueViolation):
			return false, fmt.Errorf("%w: version %s of %s already exists", rollout.ErrConflict, v.Version, v.Label)
		case isCode(err, foreignKeyViolation):
			return false, fmt.Errorf("image %s: %w: register the image first", v.Label, rollout.ErrNotFound)
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("create version %s %s: %w", v.Label, v.Version, err)
	}
	return nil
}

func blob(b json.RawMessage) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// GetVersion returns ErrNotFound when absent.
func (db *DB) GetVersion(ctx context.Context, label, version string, withBlobs bool) (rollout.Version, error) {
	cols := `label, version, gate, NULL::bytea, NULL::bytea, revoked, revoked_reason, created_at`
	if withBlobs {
		cols = `label, version, gate, snapshot, check_report, revoked, revoked_reason, created_at`
	}
	v, err := scanVersion(db.pool.QueryRow(ctx, `SELECT `+cols+` FROM versions WHERE label = $1 AND version = $2`, label, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("version %s of %s: %w", version, label, rollout.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("get version %s of %s: %w", version, label, err)
	}
	return v, nil
}

func scanVersion(s pgx.Row, extra ...any) (rollout.Version, error) {
	var v rollout.Version
	var snap, report []byte
	if err := s.Scan(append([]any{&v.Label, &v.Version, &v.Gate, &snap, &report, &v.Revoked, &v.RevokedReason, &v.CreatedAt}, extra...)...); err != nil {
		return v, err
	}
	if len(snap) > 0 {
		v.Snapshot = json.RawMessage(snap)
	}
	if len(report) > 0 {
		v.CheckReport = json.RawMessage(report)
	}
	v.CreatedAt = utc(v.CreatedAt)
	return v, nil
}

// ListVersions lists label's versions, most recently registered first.
func (db *DB) ListVersions(ctx context.Context, label string, p rollout.Page) ([]rollout.Version, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	rows, err := db.pool.Query(ctx, `SELECT label, version, gate, NULL::bytea, NULL::bytea, revoked, revoked_reason, created_at, seq
		FROM versions WHERE label = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, label, after, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s: %w", label, err)
	}
	var seqs []int64
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Version, error) {
		var seq int64
		v, err := scanVersion(r, &seq)
		seqs = append(seqs, seq)
		return v, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s: %w", label, err)
	}
	if len(out) > n {
		return out[:n], page.SeqCursor(seqs[n-1]), nil
	}
	return out, "", nil
}

// RevokeVersion marks the version revoked. Revoking a revoked version
// changes nothing (the first reason stays) and writes no audit entry.
func (db *DB) RevokeVersion(ctx context.Context, label, version, reason string, audit rollout.AuditEntry) error {
	err := db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		var was bool
		err := tx.QueryRow(ctx, `SELECT revoked FROM versions WHERE label = $1 AND version = $2 FOR UPDATE`,
			label, version).Scan(&was)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, fmt.Errorf("version %s of %s: %w", version, label, rollout.ErrNotFound)
		}
		if err != nil || was {
			return false, err
		}
		_, err = tx.Exec(ctx, `UPDATE versions SET revoked = true, revoked_reason = $1 WHERE label = $2 AND version = $3`,
			reason, label, version)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("revoke version %s of %s: %w", version, label, err)
	}
	return nil
}

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
		return nil, fmt.Errorf("rings of %q: %w: neither the label nor the global plan is set", label, rollout.ErrNotFound)
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

const rolloutCols = `id, label, version, from_version, state, ring, ring_started_at, rings, expedited,
	supersedes, forced, force_reason, approved, reason, created_at, updated_at, revision, auto_rollback`

// CreateRollout inserts r. An empty ID becomes "r-<n>". ErrNotFound when
// the version does not exist; ErrConflict when the ID exists, when the
// label already has an unfinished rollout (pending, baking, paused,
// halted) that is not the one superseded, or when supersede changed since
// it was read.
func (db *DB) CreateRollout(ctx context.Context, r *rollout.Rollout, supersede *rollout.Rollout, audit rollout.AuditEntry) error {
	if err := rollout.CheckRollout(r); err != nil {
		return err
	}
	rings, err := json.Marshal(r.Rings)
	if err != nil {
		return fmt.Errorf("create rollout of %s %s: %w", r.Label, r.Version, err)
	}
	created := *r
	if created.CreatedAt.IsZero() {
		created.CreatedAt = time.Now()
	}
	if created.UpdatedAt.IsZero() {
		created.UpdatedAt = created.CreatedAt
	}
	if supersede != nil && created.Supersedes == "" {
		created.Supersedes = supersede.ID
	}
	created.Revision = 1
	var old rollout.Rollout
	err = db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		if supersede != nil {
			old = *supersede
			old.State = rollout.StateSuperseded
			old.UpdatedAt = created.UpdatedAt
			if err := updateRollout(ctx, tx, &old); err != nil {
				return false, fmt.Errorf("supersede %s: %w", supersede.ID, err)
			}
		}
		var seq int64
		if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('rollouts', 'seq'))`).Scan(&seq); err != nil {
			return false, err
		}
		if created.ID == "" {
			created.ID = "r-" + strconv.FormatInt(seq, 10)
		}
		_, err := tx.Exec(ctx, `INSERT INTO rollouts (seq, `+rolloutCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			seq, created.ID, created.Label, created.Version, created.FromVersion, created.State, created.Ring,
			created.RingStartedAt, string(rings), created.Expedited, created.Supersedes,
			created.Forced, created.ForceReason, created.Approved, created.Reason,
			created.CreatedAt, created.UpdatedAt, created.Revision, created.AutoRollback)
		switch {
		case isCode(err, uniqueViolation) && constraint(err) == "rollouts_one_active":
			return false, fmt.Errorf("%w: %s already has an unfinished rollout; supersede it or wait for it to end", rollout.ErrConflict, r.Label)
		case isCode(err, uniqueViolation):
			return false, fmt.Errorf("%w: rollout %s already exists", rollout.ErrConflict, created.ID)
		case isCode(err, foreignKeyViolation):
			return false, fmt.Errorf("version %s of %s: %w: push the version first", r.Version, r.Label, rollout.ErrNotFound)
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("create rollout of %s %s: %w", r.Label, r.Version, err)
	}
	*r = normRollout(created)
	if supersede != nil {
		*supersede = normRollout(old)
	}
	return nil
}

// normRollout makes the caller's copy equal what a read returns.
func normRollout(r rollout.Rollout) rollout.Rollout {
	r.RingStartedAt = r.RingStartedAt.Truncate(time.Microsecond)
	r.CreatedAt = r.CreatedAt.Truncate(time.Microsecond)
	r.UpdatedAt = r.UpdatedAt.Truncate(time.Microsecond)
	return r
}

// GetRollout returns ErrNotFound when absent.
func (db *DB) GetRollout(ctx context.Context, id string) (rollout.Rollout, error) {
	r, err := scanRollout(db.pool.QueryRow(ctx, `SELECT `+rolloutCols+` FROM rollouts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("rollout %s: %w", id, rollout.ErrNotFound)
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
	next := *r
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = time.Now()
	}
	err := db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		return true, updateRollout(ctx, tx, &next)
	})
	if err != nil {
		return fmt.Errorf("update rollout %s: %w", r.ID, err)
	}
	*r = normRollout(next)
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
		return fmt.Errorf("%w: %s already has another unfinished rollout", rollout.ErrConflict, r.Label)
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
		return fmt.Errorf("rollout %s: %w", r.ID, rollout.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: rollout %s is at revision %d, not %d: it changed meanwhile; read it again", rollout.ErrConflict, r.ID, rev, r.Revision)
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

// PutPin creates or replaces org's pin of label; ErrNotFound when the
// version does not exist.
func (db *DB) PutPin(ctx context.Context, pin rollout.Pin, audit rollout.AuditEntry) error {
	if err := rollout.CheckPin(pin); err != nil {
		return err
	}
	if pin.CreatedAt.IsZero() {
		pin.CreatedAt = time.Now()
	}
	err := db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		_, err := tx.Exec(ctx, `INSERT INTO pins
			(org, label, version, owner, reason, expires_at, override_revoked, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (org, label) DO UPDATE SET version = excluded.version, owner = excluded.owner,
				reason = excluded.reason, expires_at = excluded.expires_at,
				override_revoked = excluded.override_revoked, created_by = excluded.created_by,
				created_at = excluded.created_at`,
			pin.Org, pin.Label, pin.Version, pin.Owner, pin.Reason, pin.ExpiresAt, pin.OverrideRevoked,
			pin.CreatedBy, pin.CreatedAt)
		if isCode(err, foreignKeyViolation) {
			return false, fmt.Errorf("version %s of %s: %w: push the version first", pin.Version, pin.Label, rollout.ErrNotFound)
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("pin %s %s to %s: %w", pin.Org, pin.Label, pin.Version, err)
	}
	return nil
}

// DeletePin removes org's pin of label; ErrNotFound when there is none.
func (db *DB) DeletePin(ctx context.Context, org, label string, audit rollout.AuditEntry) error {
	err := db.change(ctx, audit, func(tx pgx.Tx) (bool, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM pins WHERE org = $1 AND label = $2`, org, label)
		if err == nil && tag.RowsAffected() == 0 {
			return false, fmt.Errorf("pin of %s by %s: %w", label, org, rollout.ErrNotFound)
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("delete pin: %w", err)
	}
	return nil
}

// ListPins lists pins ordered by org then label. A pin is expired when
// ExpiresAt is at or before now.
func (db *DB) ListPins(ctx context.Context, org, label string, withExpired bool, now time.Time, p rollout.Page) ([]rollout.Pin, string, error) {
	after, err := page.AfterKey(p.After, 2)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	rows, err := db.pool.Query(ctx, `SELECT org, label, version, owner, reason, expires_at, override_revoked, created_by, created_at
		FROM pins WHERE (org, label) > ($1, $2) AND ($3 = '' OR org = $3) AND ($4 = '' OR label = $4)
			AND ($5 OR expires_at > $6)
		ORDER BY org, label LIMIT $7`, after[0], after[1], org, label, withExpired, now, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list pins: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Pin, error) {
		var pin rollout.Pin
		err := r.Scan(&pin.Org, &pin.Label, &pin.Version, &pin.Owner, &pin.Reason, &pin.ExpiresAt, &pin.OverrideRevoked,
			&pin.CreatedBy, &pin.CreatedAt)
		pin.ExpiresAt, pin.CreatedAt = utc(pin.ExpiresAt), utc(pin.CreatedAt)
		return pin, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list pins: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.KeyCursor(out[n-1].Org, out[n-1].Label), nil
	}
	return out, "", nil
}

// ListAudit lists entries newest first. Since is inclusive, Until
// exclusive; SubjectPrefix matches case-sensitively.
func (db *DB) ListAudit(ctx context.Context, f rollout.AuditFilter, p rollout.Page) ([]rollout.AuditEntry, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, err := db.pool.Query(ctx, `SELECT id, at, actor, action, subject, reason, details FROM audit
		WHERE id < $1 AND ($2 = '' OR actor = $2) AND ($3 = '' OR action = $3) AND starts_with(subject, $4)
			AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
		ORDER BY id DESC LIMIT $7`, after, f.Actor, f.Action, f.SubjectPrefix, since, until, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.AuditEntry, error) {
		var a rollout.AuditEntry
		var details *string
		err := r.Scan(&a.ID, &a.At, &a.Actor, &a.Action, &a.Subject, &a.Reason, &details)
		a.At = utc(a.At)
		if details != nil {
			a.Details = json.RawMessage(*details)
		}
		return a, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	if len(out) > n {
		out = out[:n]
		return out, page.SeqCursor(out[n-1].ID), nil
	}
	return out, "", nil
}

// CreateToken stores t; ErrConflict when its ID or hash exists.
func (db *DB) CreateToken(ctx context.Context, t rollout.Token, audit rollout.AuditEntry) error {
	if err := rollout.CheckToken(t); err != nil {
		return err
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tokens (id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
			t.ID, t.Name, t.Role, t.Hash, t.CreatedAt)
		if isCode(err, uniqueViolation) {
			return fmt.Errorf("%w: a token with this id or secret exists", rollout.ErrConflict)
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("create token %s: %w", t.ID, err)
	}
	return nil
}

// TokenByHash returns ErrNotFound for an unknown hash.
func (db *DB) TokenByHash(ctx context.Context, hash []byte) (rollout.Token, error) {
	var t rollout.Token
	err := db.pool.QueryRow(ctx, `SELECT id, name, role, hash, created_at FROM tokens WHERE hash = $1`, hash).
		Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &t.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("token: %w", rollout.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	t.CreatedAt = utc(t.CreatedAt)
	return t, nil
}

// CountTokens counts tokens of role ("" = every role).
func (db *DB) CountTokens(ctx context.Context, role string) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM tokens WHERE $1 = '' OR role = $1`, role).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}

// AppendEvents inserts the batch in one statement (arrays unnested
// server-side: one round trip, one commit). Rows go in job ID order, so
// concurrent retries of overlapping batches wait on each other in the same
// order instead of deadlocking.
func (db *DB) AppendEvents(ctx context.Context, events []rollout.JobEvent) (int, error) {
	if err := rollout.CheckEvents(events); err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	sorted := append([]rollout.JobEvent(nil), events...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].JobID < sorted[j].JobID })
	n := len(sorted)
	ids, orgs, labels, versions, outcomes, errs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	rings, durations, started := make([]int32, n), make([]int64, n), make([]time.Time, n)
	for i, e := range sorted {
		ids[i], orgs[i], labels[i], versions[i], outcomes[i], errs[i] = e.JobID, e.Org, e.Label, e.Version, e.Outcome, e.ErrorText
		rings[i], durations[i], started[i] = int32(e.Ring), e.DurationMs, e.StartedAt
	}
	for attempt := 0; ; attempt++ {
		tag, err := db.pool.Exec(ctx, `INSERT INTO events
			(job_id, org, label, version, ring, outcome, started_at, duration_ms, error_text)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
				$7::timestamptz[], $8::bigint[], $9::text[]) AS e
			ORDER BY 1
			ON CONFLICT (job_id) DO NOTHING`,
			ids, orgs, labels, versions, rings, outcomes, started, durations, errs)
		if isCode(err, deadlockDetected) && attempt < 3 {
			continue // cannot happen with sorted batches; harmless if it does
		}
		if err != nil {
			return 0, fmt.Errorf("append %d events: %w", n, err)
		}
		return int(tag.RowsAffected()), nil
	}
}

// CountJobs aggregates events from the covering index.
func (db *DB) CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (rollout.JobCounts, error) {
	var c rollout.JobCounts
	err := db.pool.QueryRow(ctx, `SELECT COUNT(*),
			COUNT(*) FILTER (WHERE outcome = $5), COUNT(*) FILTER (WHERE outcome = $6), COUNT(*) FILTER (WHERE outcome = $7)
		FROM events WHERE label = $1 AND version = $2 AND ($3 < 0 OR ring = $3) AND started_at >= $4`,
		label, version, ring, since, rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled).
		Scan(&c.Total, &c.Succeeded, &c.Failed, &c.Canceled)
	if err != nil {
		return c, fmt.Errorf("count jobs of %s %s: %w", label, version, err)
	}
	return c, nil
}

// AssignRun keys assignments by run and label: one workflow run may use
// several images. It commits without waiting for the WAL flush (see
// DB.relaxed): a PostgreSQL crash may forget the last assignments, which
// the contract allows. Assignments older than RunRetention are pruned
// every 1024 new runs.
func (db *DB) AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error) {
	var got string
	err := db.relaxed.QueryRow(ctx, `INSERT INTO runs (run_id, label, version, assigned_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING RETURNING version`, runID, label, version, now).Scan(&got)
	if err == nil {
		if db.assigned.Add(1)%1024 == 0 {
			if _, err := db.relaxed.Exec(ctx, `DELETE FROM runs WHERE assigned_at < $1`, now.Add(-RunRetention)); err != nil {
				return "", fmt.Errorf("expire old runs: %w", err)
			}
		}
		return got, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, err)
	}
	// Someone else's insert won; at READ COMMITTED this new statement
	// sees it.
	if err := db.relaxed.QueryRow(ctx, `SELECT version FROM runs WHERE run_id = $1 AND label = $2`, runID, label).Scan(&got); err != nil {
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, err)
	}
	return got, nil
}

// ForgetRuns drops label's run assignments.
func (db *DB) ForgetRuns(ctx context.Context, label string) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM runs WHERE label = $1`, label); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("forget runs of %s: %w", label, err)
	}
	return nil
}

// AddServed adds counts into whole-minute buckets (Minute is truncated).
// Like AssignRun it does not wait for the WAL flush: the counts are
// telemetry.
func (db *DB) AddServed(ctx context.Context, counts []rollout.Served) error {
	if len(counts) == 0 {
		return nil
	}
	// Sorted by key: concurrent flushes from several replicas lock the
	// same buckets in the same order.
	sorted := append([]rollout.Served(nil), counts...)
	for i := range sorted {
		sorted[i].Minute = sorted[i].Minute.Truncate(time.Minute)
	}
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Label != b.Label {
			return a.Label < b.Label
		}
		if !a.Minute.Equal(b.Minute) {
			return a.Minute.Before(b.Minute)
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if a.Ring != b.Ring {
			return a.Ring < b.Ring
		}
		return a.Reason < b.Reason
	})
	b := &pgx.Batch{}
	for _, c := range sorted {
		b.Queue(`INSERT INTO served (label, minute, version, ring, reason, count) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (label, minute, version, ring, reason) DO UPDATE SET count = served.count + excluded.count`,
			c.Label, c.Minute, c.Version, c.Ring, c.Reason, c.Count)
	}
	err := pgx.BeginFunc(ctx, db.relaxed, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("add served counts: %w", err)
	}
	return nil
}

// ServedSince sums label's counts per version, ring and reason over the
// minute buckets from the one holding since; Minute is the latest bucket
// summed. Ordered by version, ring, reason.
func (db *DB) ServedSince(ctx context.Context, label string, since time.Time) ([]rollout.Served, error) {
	rows, err := db.pool.Query(ctx, `SELECT version, ring, reason, SUM(count)::bigint, MAX(minute) FROM served
		WHERE label = $1 AND minute >= $2 GROUP BY version, ring, reason ORDER BY version, ring, reason`,
		label, since.Truncate(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("served counts of %s: %w", label, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rollout.Served, error) {
		s := rollout.Served{Label: label}
		err := r.Scan(&s.Version, &s.Ring, &s.Reason, &s.Count, &s.Minute)
		s.Minute = utc(s.Minute)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("served counts of %s: %w", label, err)
	}
	return out, nil
}

// Generation reads the change counter.
func (db *DB) Generation(ctx context.Context) (int64, error) {
	var g int64
	if err := db.pool.QueryRow(ctx, `SELECT value FROM generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	return g, nil
}

// AcquireLease takes name for holder when it is free, expired or already
// holder's, in one upsert (the row lock makes racing candidates take
// turns, and each re-checks the condition on the winner's row). The fence
// goes up only when the holder changes (releasing counts as a change).
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, int64, error) {
	if err := rollout.CheckLease(name, holder); err != nil {
		return false, 0, err
	}
	var fence int64
	err := db.pool.QueryRow(ctx, `INSERT INTO leases AS l (name, holder, expires_at, fence) VALUES ($1, $2, $3, 1)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			fence = CASE WHEN l.holder = excluded.holder THEN l.fence ELSE l.fence + 1 END
		WHERE l.holder = excluded.holder OR l.expires_at <= $4
		RETURNING fence`, name, holder, now.Add(ttl), now).Scan(&fence)
	if err == nil {
		return true, fence, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, 0, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT fence FROM leases WHERE name = $1`, name).Scan(&fence); err != nil {
		return false, 0, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	return false, fence, nil
}

// ReleaseLease frees name if holder holds it; otherwise it does nothing.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := db.pool.Exec(ctx, `UPDATE leases SET holder = '', expires_at = '-infinity' WHERE name = $1 AND holder = $2`,
		name, holder)
	if err != nil {
		return fmt.Errorf("release lease %s for %s: %w", name, holder, err)
	}
	return nil
}
