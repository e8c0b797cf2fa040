package rollout

import (
	"context"
	"time"
)

// Store persists the control plane: every role below, plus Close. Two
// implementations exist (store/sqlite, the embedded default, and
// store/postgres, for several replicas); both must pass store/storetest's
// suite. Code that needs one role takes that role's interface.
//
// Contract for every method of every role: safe for concurrent use by
// many goroutines and several processes on the same database;
// ErrNotFound / ErrConflict wrapped as documented, ErrInvalid for the
// input checks of required.go (made before the database is touched);
// every method that changes control-plane state takes the AuditEntry to
// record with it and writes both in one transaction, so no state change
// exists without its audit entry and vice versa. IDs and timestamps left
// zero are filled in as defaults.go says. A call that changes nothing
// (PutImage of an existing image, RevokeVersion of a revoked version)
// writes no audit entry and does not bump Generation.
type Store interface {
	ImageStore
	VersionStore
	RolloutStore
	PinStore
	AuditStore
	TokenStore
	EventStore
	RunStore
	LeaseStore
	TelemetryStore
	OutboxStore
	ReportStore
	VerifyStore
	SubscriptionStore
	SessionStore
	OrgTargetStore
	// Generation is a number that increases whenever anything that
	// resolve depends on changes (rollouts, pins, versions, rings, run
	// assignments forgotten); replicas poll it to refresh their in-memory
	// routing cheaply.
	Generation(ctx context.Context) (int64, error)
	Close() error
}

// ImageStore holds the labels runners ask for.
type ImageStore interface {
	// PutImage creates the image if it does not exist (idempotent: an
	// existing image is left as is, with no audit entry). ErrInvalid
	// without a label.
	PutImage(ctx context.Context, img Image, audit AuditEntry) error
	// ListImages pages through images by label; the cursor is "" on the
	// last page.
	ListImages(ctx context.Context, p Page) ([]Image, string, error)
}

// VersionStore holds the versions of images and their ring plans.
type VersionStore interface {
	// CreateVersion registers a version. ErrNotFound when its image does
	// not exist (PutImage first); ErrConflict if label+version exists
	// (versions are immutable, so a retry of a create that succeeded
	// also gets ErrConflict).
	CreateVersion(ctx context.Context, v Version, audit AuditEntry) error
	// GetVersion returns ErrNotFound when absent. withBlobs loads Snapshot
	// and CheckReport.
	GetVersion(ctx context.Context, label, version string, withBlobs bool) (Version, error)
	// ListVersions lists label's versions newest first, without blobs.
	ListVersions(ctx context.Context, label string, p Page) ([]Version, string, error)
	// RevokeVersion marks a version revoked; ErrNotFound when absent.
	// Idempotent: revoking a revoked version keeps the first reason and
	// writes no audit entry.
	RevokeVersion(ctx context.Context, label, version, reason string, audit AuditEntry) error

	// PutRings replaces the ring plan of label ("" = the global plan). An
	// empty plan deletes label's plan, so the label falls back to the
	// global one. Last write wins; always audited.
	PutRings(ctx context.Context, label string, rings []Ring, audit AuditEntry) error
	// GetRings returns label's plan, else the global plan; ErrNotFound if neither.
	GetRings(ctx context.Context, label string) ([]Ring, error)
}

// RolloutStore holds rollouts. Concurrency is optimistic: every write
// names the Revision it read, so of two writers racing on one rollout
// exactly one wins and the other gets ErrConflict.
type RolloutStore interface {
	// CreateRollout inserts r (ID assigned when empty, Revision set to 1;
	// r is updated to what a read returns). A label has at most one
	// unfinished rollout (pending, baking, paused, halted): ErrConflict
	// when it already has one, unless that one is passed as supersede.
	// When supersede is non-nil, that rollout is moved to StateSuperseded
	// in the same transaction; ErrConflict if it is not in the state the
	// caller read (its Revision). ErrConflict when r.ID exists.
	// ErrNotFound when the version does not exist.
	CreateRollout(ctx context.Context, r *Rollout, supersede *Rollout, audit AuditEntry) error
	// GetRollout returns the rollout with its current Revision;
	// ErrNotFound when absent.
	GetRollout(ctx context.Context, id string) (Rollout, error)
	// ListRollouts returns rollouts of label ("" = all), newest first;
	// states filters when non-empty.
	ListRollouts(ctx context.Context, label string, states []State, p Page) ([]Rollout, string, error)
	// UpdateRollout writes r if the stored revision equals r.Revision and
	// increments it (r.Revision is updated); ErrConflict otherwise, and
	// when r would become a second unfinished rollout of its label;
	// ErrNotFound when absent. ID, Label, Version and CreatedAt never
	// change.
	UpdateRollout(ctx context.Context, r *Rollout, audit AuditEntry) error
	// LastCompleted returns the newest completed rollout's version of label;
	// "" when none.
	LastCompleted(ctx context.Context, label string) (string, error)
}

// PinStore holds pins, one per organisation and label.
type PinStore interface {
	// PutPin creates or replaces the pin of org+label (last write wins);
	// ErrNotFound when the version does not exist.
	PutPin(ctx context.Context, pin Pin, audit AuditEntry) error
	// DeletePin removes it; ErrNotFound when there is none.
	DeletePin(ctx context.Context, org, label string, audit AuditEntry) error
	// ListPins lists pins ordered by org then label, filtered by org
	// and/or label when non-empty, expired ones (ExpiresAt at or before
	// now) included only when withExpired.
	ListPins(ctx context.Context, org, label string, withExpired bool, now time.Time, p Page) ([]Pin, string, error)
}

// AuditStore reads the audit log that every other role writes.
type AuditStore interface {
	// ListAudit lists entries newest first (by ID, which increases with
	// every entry written). Since is inclusive, Until exclusive,
	// SubjectPrefix matches case-sensitively. It sees every entry whose
	// change committed before the call; an entry is never seen without
	// its change.
	ListAudit(ctx context.Context, f AuditFilter, p Page) ([]AuditEntry, string, error)
}

// TokenStore holds API credentials by the hash of their secret.
type TokenStore interface {
	// CreateToken stores t with its audit entry; ErrConflict when a token
	// with its ID or hash exists (so a retried create fails rather than
	// minting a second token); ErrInvalid without ID or hash. It does not
	// bump Generation: tokens are not routing.
	CreateToken(ctx context.Context, t Token, audit AuditEntry) error
	// TokenByHash returns ErrNotFound for an unknown hash. A revoked or
	// expired token is returned as stored (RevokedAt, ExpiresAt): the
	// caller refuses it.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	// CountTokens counts tokens of role ("" = every role) that are not
	// revoked; a token whose CreateToken returned is counted.
	CountTokens(ctx context.Context, role string) (int, error)
	// ListTokens pages through tokens by ID, revoked ones included; the
	// cursor is "" on the last page. Hash is never filled in.
	ListTokens(ctx context.Context, p Page) ([]Token, string, error)
	// RevokeToken marks token id revoked at at and returns it as stored;
	// ErrNotFound when there is none. Idempotent: a revoked token keeps
	// its first RevokedAt and no audit entry is written (changed false).
	RevokeToken(ctx context.Context, id string, at time.Time, audit AuditEntry) (t Token, changed bool, err error)
	// TouchToken records that token id was used at at: LastUsedAt only
	// moves forward. Not audited; an unknown id is ignored.
	TouchToken(ctx context.Context, id string, at time.Time) error
}

// EventStore holds job outcomes reported by runners.
type EventStore interface {
	// AppendEvents stores job events durably before returning; an event
	// whose JobID is already stored is ignored (idempotent retries, also
	// when concurrent). Returns how many were new.
	AppendEvents(ctx context.Context, events []JobEvent) (int, error)
	// CountJobs aggregates events of label+version in ring (-1 = any ring)
	// that started at or after since.
	CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (JobCounts, error)
}

// RunStore holds what resolve writes: run affinity and served counts.
// Neither need be durable when a call returns: a crash of the machine or
// database server may forget the latest writes (a re-run may then get
// another version, as after RunRetention).
type RunStore interface {
	// AssignRun records which version a workflow run got for label, first
	// write wins, also between concurrent callers: it returns the version
	// stored for (runID, label), the given one when new. Keyed by run and
	// label because one run may use several images. Entries older than
	// RunRetention may be forgotten.
	AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error)
	// ForgetRuns drops run assignments of label (rollback, revocation) so
	// affinity never pins a run to a version that was taken back. Durable,
	// and it bumps Generation.
	ForgetRuns(ctx context.Context, label string) error

	// AddServed adds resolve counts (batched by the server) into
	// whole-minute buckets (Minute is truncated); concurrent calls add up.
	AddServed(ctx context.Context, counts []Served) error
	// ServedSince sums counts of label per version, ring and reason over
	// whole minutes, from the minute containing since on; each result's
	// Minute is the latest bucket summed. Ordered by version, ring, reason.
	ServedSince(ctx context.Context, label string, since time.Time) ([]Served, error)
}

// LeaseStore holds named leases, so that one replica at a time runs the
// controller.
type LeaseStore interface {
	// AcquireLease takes or renews the named lease for holder until
	// now+ttl; ok is false while another holder's lease is unexpired.
	// Of candidates racing for a free lease exactly one gets ok. fence
	// increases every time the lease changes hands (releasing counts), so
	// a stale holder's fence is always lower. ErrInvalid without name or
	// holder.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (ok bool, fence int64, err error)
	// ReleaseLease frees name if holder holds it; otherwise it does
	// nothing (idempotent).
	ReleaseLease(ctx context.Context, name, holder string) error
}

// AuditFilter narrows ListAudit; empty fields match everything.
type AuditFilter struct {
	Actor, Action, SubjectPrefix string
	Since, Until                 time.Time
}
