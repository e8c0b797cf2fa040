package rollout

import (
	"strconv"
	"time"
)

// What a store fills in for the caller, written once so that the stores
// agree. Each Prepare function makes the input checks of required.go and
// returns the value to write; the store maps it to rows and nothing more.

// RunRetention is how long a store remembers a workflow run's version
// (RunStore.AssignRun). A run that is re-run after that may get another
// version.
const RunRetention = 14 * 24 * time.Hour

// PruneRunsEvery is how many run assignments may be written between two
// prunes of those older than RunRetention: often enough to keep the table
// near its retention, rarely enough that the range delete costs nothing
// per run.
const PruneRunsEvery = 1024

// RunsExpired is the assignment time before which a run assignment made
// as of now may be dropped.
func RunsExpired(now time.Time) time.Time { return now.Add(-RunRetention) }

// PrepareImage checks img and stamps its creation time when zero.
func PrepareImage(img Image) (Image, error) {
	if err := CheckImage(img); err != nil {
		return img, err
	}
	if img.CreatedAt.IsZero() {
		img.CreatedAt = time.Now()
	}
	return img, nil
}

// PrepareVersion checks v and stamps its creation time when zero.
func PrepareVersion(v Version) (Version, error) {
	if err := CheckVersion(v); err != nil {
		return v, err
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now()
	}
	return v, nil
}

// PrepareRollout checks r and returns it as CreateRollout stores it:
// created (and updated, when zero) now, at revision 1, naming supersede
// (if any) as the rollout it replaces. The ID stays empty when r has
// none: the store assigns RolloutID of its sequence.
func PrepareRollout(r Rollout, supersede *Rollout) (Rollout, error) {
	if err := CheckRollout(&r); err != nil {
		return r, err
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	if supersede != nil && r.Supersedes == "" {
		r.Supersedes = supersede.ID
	}
	r.Revision = 1
	return r, nil
}

// Superseded is old as CreateRollout writes it when created replaces it.
// Its Revision is still the one the caller read, for the compare-and-set.
func Superseded(old Rollout, created Rollout) Rollout {
	old.State = StateSuperseded
	old.UpdatedAt = created.UpdatedAt
	return old
}

// RolloutID names a rollout created without an ID by the store's
// sequence number seq.
func RolloutID(seq int64) string { return "r-" + strconv.FormatInt(seq, 10) }

// PrepareUpdate returns r as UpdateRollout writes it: updated now when
// UpdatedAt is zero.
func PrepareUpdate(r Rollout) Rollout {
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = time.Now()
	}
	return r
}

// AsStored returns r as a read returns it after a write: every store
// keeps times to the microsecond. Stores hand it back to the caller of
// CreateRollout and UpdateRollout.
func AsStored(r Rollout) Rollout {
	r.RingStartedAt = r.RingStartedAt.Truncate(time.Microsecond)
	r.CreatedAt = r.CreatedAt.Truncate(time.Microsecond)
	r.UpdatedAt = r.UpdatedAt.Truncate(time.Microsecond)
	return r
}

// PreparePin checks pin and stamps its creation time when zero.
func PreparePin(pin Pin) (Pin, error) {
	if err := CheckPin(pin); err != nil {
		return pin, err
	}
	if pin.CreatedAt.IsZero() {
		pin.CreatedAt = time.Now()
	}
	return pin, nil
}

// PrepareToken checks t and stamps its creation time when zero.
func PrepareToken(t Token) (Token, error) {
	if err := CheckToken(t); err != nil {
		return t, err
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	return t, nil
}

// PrepareAudit stamps a's time when zero. Its ID, when zero, is the
// store's next one.
func PrepareAudit(a AuditEntry) AuditEntry {
	if a.At.IsZero() {
		a.At = time.Now()
	}
	return a
}

// SupersedeAudit is the entry CreateRollout writes, besides audit (the
// new rollout's), for the rollout before that created supersedes: every
// state change of every subject has an entry of its own, so the audit
// log under rollout/<old id> says how that rollout ended.
func SupersedeAudit(audit AuditEntry, before, created Rollout) AuditEntry {
	return AuditEntry{At: audit.At, Actor: audit.Actor, Action: "rollout.supersede", Subject: "rollout/" + before.ID,
		Reason:  "superseded by rollout " + created.ID + " of " + created.Version,
		Details: details("from", before.State, "to", StateSuperseded, "ring", before.Ring, "version", before.Version, "supersededBy", created.ID)}
}
