package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

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
	err := db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
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

// CreateVersion registers v. ErrNotFound when its image does not exist
// (PutImage first), ErrConflict when label+version exists.
func (db *DB) CreateVersion(ctx context.Context, v rollout.Version, audit rollout.AuditEntry) error {
	if err := rollout.CheckVersion(v); err != nil {
		return err
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now()
	}
	err := db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if err := imageExists(ctx, tx, v.Label); err != nil {
			return false, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO versions
			(label, version, gate, snapshot, check_report, revoked, revoked_reason, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			v.Label, v.Version, v.Gate, blob(v.Snapshot), blob(v.CheckReport), b2i(v.Revoked), v.RevokedReason, us(v.CreatedAt))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
			return false, fmt.Errorf("%w: version %s of %s already exists", rollout.ErrConflict, v.Version, v.Label)
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("create version %s %s: %w", v.Label, v.Version, err)
	}
	return nil
}

func imageExists(ctx context.Context, tx *sql.Tx, label string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM images WHERE label = ?`, label).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("image %s: %w: register the image first", label, rollout.ErrNotFound)
	}
	return err
}

func versionExists(ctx context.Context, tx *sql.Tx, label, version string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM versions WHERE label = ? AND version = ?`, label, version).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("version %s of %s: %w: push the version first", version, label, rollout.ErrNotFound)
	}
	return err
}

func blob(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// GetVersion returns ErrNotFound when absent.
func (db *DB) GetVersion(ctx context.Context, label, version string, withBlobs bool) (rollout.Version, error) {
	cols := `label, version, gate, NULL, NULL, revoked, revoked_reason, created_at`
	if withBlobs {
		cols = `label, version, gate, snapshot, check_report, revoked, revoked_reason, created_at`
	}
	row := db.rd.QueryRowContext(ctx, `SELECT `+cols+` FROM versions WHERE label = ? AND version = ?`, label, version)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("version %s of %s: %w", version, label, rollout.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("get version %s of %s: %w", version, label, err)
	}
	return v, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanVersion(s scanner) (rollout.Version, error) {
	var v rollout.Version
	var snap, report []byte
	var revoked int
	var at int64
	if err := s.Scan(&v.Label, &v.Version, &v.Gate, &snap, &report, &revoked, &v.RevokedReason, &at); err != nil {
		return v, err
	}
	if len(snap) > 0 {
		v.Snapshot = json.RawMessage(snap)
	}
	if len(report) > 0 {
		v.CheckReport = json.RawMessage(report)
	}
	v.Revoked = revoked != 0
	v.CreatedAt = fromUS(at)
	return v, nil
}

// ListVersions lists label's versions, most recently registered first.
func (db *DB) ListVersions(ctx context.Context, label string, p rollout.Page) ([]rollout.Version, string, error) {
	after, err := page.AfterSeq(p.After)
	if err != nil {
		return nil, "", err
	}
	n := page.Limit(p)
	rows, err := db.rd.QueryContext(ctx, `SELECT seq, label, version, gate, NULL, NULL, revoked, revoked_reason, created_at
		FROM versions WHERE label = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, label, after, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s: %w", label, err)
	}
	defer rows.Close()
	var out []rollout.Version
	var seqs []int64
	for rows.Next() {
		var seq int64
		var v rollout.Version
		var snap, report []byte
		var revoked int
		var at int64
		if err := rows.Scan(&seq, &v.Label, &v.Version, &v.Gate, &snap, &report, &revoked, &v.RevokedReason, &at); err != nil {
			return nil, "", fmt.Errorf("list versions of %s: %w", label, err)
		}
		v.Revoked = revoked != 0
		v.CreatedAt = fromUS(at)
		out = append(out, v)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
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
	err := db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if err := versionExists(ctx, tx, label, version); err != nil {
			return false, err
		}
		res, err := tx.ExecContext(ctx, `UPDATE versions SET revoked = 1, revoked_reason = ?
			WHERE label = ? AND version = ? AND revoked = 0`, reason, label, version)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
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
	err = db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if len(rings) == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM rings WHERE label = ?`, label)
			return err == nil, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rings (label, rings) VALUES (?, ?)
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
	err := db.rd.QueryRowContext(ctx, `SELECT rings FROM rings WHERE label IN (?, '')
		ORDER BY label DESC LIMIT 1`, label).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
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
	now := time.Now()
	created := *r
	if created.CreatedAt.IsZero() {
		created.CreatedAt = now
	}
	if created.UpdatedAt.IsZero() {
		created.UpdatedAt = created.CreatedAt
	}
	if supersede != nil && created.Supersedes == "" {
		created.Supersedes = supersede.ID
	}
	created.Revision = 1
	var old rollout.Rollout
	err = db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if err := versionExists(ctx, tx, r.Label, r.Version); err != nil {
			return false, err
		}
		if supersede != nil {
			old = *supersede
			old.State = rollout.StateSuperseded
			old.UpdatedAt = created.UpdatedAt
			if err := updateRollout(ctx, tx, &old); err != nil {
				return false, fmt.Errorf("supersede %s: %w", supersede.ID, err)
			}
		}
		if created.ID == "" {
			var seq int64
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM rollouts`).Scan(&seq); err != nil {
				return false, err
			}
			created.ID = "r-" + strconv.FormatInt(seq, 10)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rollouts (`+rolloutCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			created.ID, created.Label, created.Version, created.FromVersion, created.State, created.Ring,
			us(created.RingStartedAt), string(rings), b2i(created.Expedited), created.Supersedes,
			b2i(created.Forced), created.ForceReason, created.Approved, created.Reason,
			us(created.CreatedAt), us(created.UpdatedAt), created.Revision, b2i(created.AutoRollback))
		switch {
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) && strings.Contains(err.Error(), "rollouts.label"):
			return false, fmt.Errorf("%w: %s already has an unfinished rollout; supersede it or wait for it to end", rollout.ErrConflict, r.Label)
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
			return false, fmt.Errorf("%w: rollout %s already exists", rollout.ErrConflict, created.ID)
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

// GetRollout returns ErrNotFound when absent.
func (db *DB) GetRollout(ctx context.Context, id string) (rollout.Rollout, error) {
	row := db.rd.QueryRowContext(ctx, `SELECT `+rolloutCols+` FROM rollouts WHERE id = ?`, id)
	r, err := scanRollout(row)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("rollout %s: %w", id, rollout.ErrNotFound)
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
	next := *r
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = time.Now()
	}
	err := db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		return true, updateRollout(ctx, tx, &next)
	})
	if err != nil {
		return fmt.Errorf("update rollout %s: %w", r.ID, err)
	}
	*r = normRollout(next)
	return nil
}

// normRollout makes the caller's copy equal what a read returns.
func normRollout(r rollout.Rollout) rollout.Rollout {
	r.RingStartedAt = r.RingStartedAt.Truncate(time.Microsecond)
	r.CreatedAt = r.CreatedAt.Truncate(time.Microsecond)
	r.UpdatedAt = r.UpdatedAt.Truncate(time.Microsecond)
	return r
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
		return fmt.Errorf("%w: %s already has another unfinished rollout", rollout.ErrConflict, r.Label)
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

// PutPin creates or replaces org's pin of label; ErrNotFound when the
// version does not exist.
func (db *DB) PutPin(ctx context.Context, pin rollout.Pin, audit rollout.AuditEntry) error {
	if err := rollout.CheckPin(pin); err != nil {
		return err
	}
	if pin.CreatedAt.IsZero() {
		pin.CreatedAt = time.Now()
	}
	err := db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		if err := versionExists(ctx, tx, pin.Label, pin.Version); err != nil {
			return false, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO pins
			(org, label, version, owner, reason, expires_at, override_revoked, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org, label) DO UPDATE SET version = excluded.version, owner = excluded.owner,
				reason = excluded.reason, expires_at = excluded.expires_at,
				override_revoked = excluded.override_revoked, created_by = excluded.created_by,
				created_at = excluded.created_at`,
			pin.Org, pin.Label, pin.Version, pin.Owner, pin.Reason, us(pin.ExpiresAt), b2i(pin.OverrideRevoked),
			pin.CreatedBy, us(pin.CreatedAt))
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("pin %s %s to %s: %w", pin.Org, pin.Label, pin.Version, err)
	}
	return nil
}

// DeletePin removes org's pin of label; ErrNotFound when there is none.
func (db *DB) DeletePin(ctx context.Context, org, label string, audit rollout.AuditEntry) error {
	err := db.change(ctx, audit, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM pins WHERE org = ? AND label = ?`, org, label)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			return false, fmt.Errorf("pin of %s by %s: %w", label, org, rollout.ErrNotFound)
		}
		return n > 0, err
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
	q := `SELECT org, label, version, owner, reason, expires_at, override_revoked, created_by, created_at
		FROM pins WHERE (org, label) > (?, ?)`
	args := []any{after[0], after[1]}
	if org != "" {
		q += ` AND org = ?`
		args = append(args, org)
	}
	if label != "" {
		q += ` AND label = ?`
		args = append(args, label)
	}
	if !withExpired {
		q += ` AND expires_at > ?`
		args = append(args, us(now))
	}
	q += ` ORDER BY org, label LIMIT ?`
	args = append(args, n+1)
	rows, err := db.rd.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list pins: %w", err)
	}
	defer rows.Close()
	var out []rollout.Pin
	for rows.Next() {
		var pin rollout.Pin
		var expires, created int64
		var override int
		if err := rows.Scan(&pin.Org, &pin.Label, &pin.Version, &pin.Owner, &pin.Reason, &expires, &override,
			&pin.CreatedBy, &created); err != nil {
			return nil, "", fmt.Errorf("list pins: %w", err)
		}
		pin.ExpiresAt = fromUS(expires)
		pin.CreatedAt = fromUS(created)
		pin.OverrideRevoked = override != 0
		out = append(out, pin)
	}
	if err := rows.Err(); err != nil {
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
	q := `SELECT id, at, actor, action, subject, reason, details FROM audit WHERE id < ?`
	args := []any{after}
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		q += ` AND action = ?`
		args = append(args, f.Action)
	}
	if f.SubjectPrefix != "" {
		q += ` AND substr(subject, 1, length(?)) = ?`
		args = append(args, f.SubjectPrefix, f.SubjectPrefix)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, us(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND at < ?`
		args = append(args, us(f.Until))
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, n+1)
	rows, err := db.rd.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []rollout.AuditEntry
	for rows.Next() {
		var a rollout.AuditEntry
		var at int64
		var details sql.NullString
		if err := rows.Scan(&a.ID, &at, &a.Actor, &a.Action, &a.Subject, &a.Reason, &details); err != nil {
			return nil, "", fmt.Errorf("list audit: %w", err)
		}
		a.At = fromUS(at)
		if details.Valid {
			a.Details = json.RawMessage(details.String)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
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
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Role, t.Hash, us(t.CreatedAt))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) || isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
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
	var at int64
	err := db.rd.QueryRowContext(ctx, `SELECT id, name, role, hash, created_at FROM tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token: %w", rollout.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	t.CreatedAt = fromUS(at)
	return t, nil
}

// CountTokens counts tokens of role ("" = every role).
func (db *DB) CountTokens(ctx context.Context, role string) (int, error) {
	var n int
	err := db.rd.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE ? = '' OR role = ?`, role, role).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}

// AppendEvents stores events in one fsynced transaction.
func (db *DB) AppendEvents(ctx context.Context, events []rollout.JobEvent) (int, error) {
	if err := rollout.CheckEvents(events); err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	var added int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO events
			(job_id, org, label, version, ring, outcome, started_at, duration_ms, error_text)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, e := range events {
			res, err := st.ExecContext(ctx, e.JobID, e.Org, e.Label, e.Version, e.Ring, e.Outcome, us(e.StartedAt),
				e.DurationMs, e.ErrorText)
			if err != nil {
				return fmt.Errorf("job %s: %w", e.JobID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			added += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append %d events: %w", len(events), err)
	}
	return int(added), nil
}

// CountJobs aggregates events from the covering index.
func (db *DB) CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (rollout.JobCounts, error) {
	var c rollout.JobCounts
	err := db.rd.QueryRowContext(ctx, `SELECT COUNT(*),
			COALESCE(SUM(outcome = ?), 0), COALESCE(SUM(outcome = ?), 0), COALESCE(SUM(outcome = ?), 0)
		FROM events WHERE label = ? AND version = ? AND (? < 0 OR ring = ?) AND started_at >= ?`,
		rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled,
		label, version, ring, ring, us(since)).Scan(&c.Total, &c.Succeeded, &c.Failed, &c.Canceled)
	if err != nil {
		return c, fmt.Errorf("count jobs of %s %s: %w", label, version, err)
	}
	return c, nil
}

// AssignRun keys assignments by run and label: one workflow run may use
// several images. Assignments older than RunRetention are dropped now and
// then.
//
// It is on the resolve path of every new run, so concurrent calls are
// group-committed: one transaction for all the calls waiting, without an
// fsync (synchronous=NORMAL; see the package doc).
func (db *DB) AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error) {
	req := &assignReq{runID: runID, label: label, version: version, now: now, done: make(chan struct{})}
	select {
	case db.assign <- req:
	case <-ctx.Done():
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, ctx.Err())
	case <-db.quit:
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, errClosed)
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, ctx.Err())
	case <-db.quit:
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, errClosed)
	}
	if req.err != nil {
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, req.err)
	}
	return req.got, nil
}

var errClosed = errors.New("store closed")

type assignReq struct {
	runID, label, version string
	now                   time.Time
	got                   string
	err                   error
	done                  chan struct{}
}

// maxAssignBatch bounds one group commit, so its latency stays small.
const maxAssignBatch = 512

// maxAssignYields bounds how often assignLoop yields for more callers
// before committing; it stops earlier when a yield brought none.
const maxAssignYields = 4

// assignLoop group-commits AssignRun calls until Close.
func (db *DB) assignLoop() {
	defer db.wg.Done()
	for {
		var batch []*assignReq
		select {
		case r := <-db.assign:
			batch = append(batch, r)
		case <-db.quit:
			return
		}
		// The callers are resolve handlers on the same few Ps: yielding
		// lets those about to call AssignRun join this commit, so one
		// commit (mostly its WAL page writes) serves several runs. That
		// halves its cost per run under load; with nothing else runnable
		// Gosched returns at once.
		for round := 0; len(batch) < maxAssignBatch && round < maxAssignYields; round++ {
			runtime.Gosched()
			n := len(batch)
		drain:
			for len(batch) < maxAssignBatch {
				select {
				case r := <-db.assign:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			if len(batch) == n {
				break
			}
		}
		err := db.writeRelaxed(context.Background(), func(tx *sql.Tx) error {
			ins, sel := tx.Stmt(db.insRun), tx.Stmt(db.selRun)
			defer ins.Close()
			defer sel.Close()
			for _, r := range batch {
				r.err = ins.QueryRow(r.runID, r.label, r.version, us(r.now)).Scan(&r.got)
				if errors.Is(r.err, sql.ErrNoRows) {
					r.err = sel.QueryRow(r.runID, r.label).Scan(&r.got)
				}
				if r.err != nil {
					return r.err
				}
			}
			db.assigned += len(batch)
			if db.assigned >= 1024 {
				// Pruning now and then keeps the table to RunRetention;
				// runs_assigned makes it a range delete.
				db.assigned = 0
				_, err := tx.Exec(`DELETE FROM runs WHERE assigned_at < ?`, us(batch[0].now.Add(-RunRetention)))
				return err
			}
			return nil
		})
		for _, r := range batch {
			if err != nil {
				r.err, r.got = err, ""
			}
			close(r.done)
		}
	}
}

// ForgetRuns drops label's run assignments.
func (db *DB) ForgetRuns(ctx context.Context, label string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE label = ?`, label); err != nil {
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
// Like AssignRun it commits without an fsync: the counts are statistics.
func (db *DB) AddServed(ctx context.Context, counts []rollout.Served) error {
	if len(counts) == 0 {
		return nil
	}
	err := db.writeRelaxed(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO served (label, minute, version, ring, reason, count)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (label, minute, version, ring, reason) DO UPDATE SET count = count + excluded.count`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, c := range counts {
			if _, err := st.ExecContext(ctx, c.Label, us(c.Minute.Truncate(time.Minute)), c.Version, c.Ring, c.Reason,
				c.Count); err != nil {
				return err
			}
		}
		return nil
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
	rows, err := db.rd.QueryContext(ctx, `SELECT version, ring, reason, SUM(count), MAX(minute) FROM served
		WHERE label = ? AND minute >= ? GROUP BY version, ring, reason ORDER BY version, ring, reason`,
		label, us(since.Truncate(time.Minute)))
	if err != nil {
		return nil, fmt.Errorf("served counts of %s: %w", label, err)
	}
	defer rows.Close()
	var out []rollout.Served
	for rows.Next() {
		s := rollout.Served{Label: label}
		var minute int64
		if err := rows.Scan(&s.Version, &s.Ring, &s.Reason, &s.Count, &minute); err != nil {
			return nil, fmt.Errorf("served counts of %s: %w", label, err)
		}
		s.Minute = fromUS(minute)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("served counts of %s: %w", label, err)
	}
	return out, nil
}

// Generation reads the change counter.
func (db *DB) Generation(ctx context.Context) (int64, error) {
	var g int64
	if err := db.rd.QueryRowContext(ctx, `SELECT value FROM generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	return g, nil
}

// AcquireLease takes name for holder when it is free, expired or already
// holder's. The fence goes up only when the holder changes (releasing
// counts as a change), so a stale leader's fence is always lower.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, int64, error) {
	if err := rollout.CheckLease(name, holder); err != nil {
		return false, 0, err
	}
	var ok bool
	var fence int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO leases (name, holder, expires_at, fence) VALUES (?, ?, ?, 1)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
				fence = CASE WHEN leases.holder = excluded.holder THEN leases.fence ELSE leases.fence + 1 END
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
			RETURNING fence`, name, holder, us(now.Add(ttl)), us(now)).Scan(&fence)
		if err == nil {
			ok = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT fence FROM leases WHERE name = ?`, name).Scan(&fence)
	})
	if err != nil {
		return false, 0, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	return ok, fence, nil
}

// ReleaseLease frees name if holder holds it; otherwise it does nothing.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE leases SET holder = '', expires_at = ? WHERE name = ? AND holder = ?`,
			us(time.Time{}), name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s for %s: %w", name, holder, err)
	}
	return nil
}
