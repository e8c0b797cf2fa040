package rollout

import (
	"context"
	"time"
)

// Store persists the control plane. Two implementations exist
// (store/sqlite, the embedded default, and store/postgres, for several
// replicas); both must pass store/storetest's suite.
//
// Contract for every method: safe for concurrent use by many goroutines and
// several processes on the same database; ErrNotFound / ErrConflict wrapped
// as documented; every method that changes control-plane state takes the
// AuditEntry to record with it and writes both in one transaction, so no
// state change exists without its audit entry and vice versa. IDs and
// timestamps in AuditEntry are assigned by the store when zero. A call
// that changes nothing (PutImage of an existing image, RevokeVersion of a
// revoked version) writes no audit entry and does not bump Generation.
type Store interface {
	TelemetryStore

	// PutImage creates the image if it does not exist (idempotent: an
	// existing image is left as is, with no audit entry).
	PutImage(ctx context.Context, img Image, audit AuditEntry) error
	ListImages(ctx context.Context, p Page) ([]Image, string, error) // items, next cursor ("" when done)

	// CreateVersion registers a version; ErrConflict if label+version exists.
	CreateVersion(ctx context.Context, v Version, audit AuditEntry) error
	// GetVersion returns ErrNotFound when absent. withBlobs loads Snapshot and CheckReport.
	GetVersion(ctx context.Context, label, version string, withBlobs bool) (Version, error)
	ListVersions(ctx context.Context, label string, p Page) ([]Version, string, error) // newest first, without blobs
	// RevokeVersion marks a version revoked; ErrNotFound when absent.
	// Idempotent: revoking a revoked version keeps the first reason and
	// writes no audit entry.
	RevokeVersion(ctx context.Context, label, version, reason string, audit AuditEntry) error

	// PutRings replaces the ring plan of label ("" = the global plan). An
	// empty plan deletes label's plan, so the label falls back to the
	// global one.
	PutRings(ctx context.Context, label string, rings []Ring, audit AuditEntry) error
	// GetRings returns label's plan, else the global plan; ErrNotFound if neither.
	GetRings(ctx context.Context, label string) ([]Ring, error)

	// CreateRollout inserts r (ID assigned when empty, Revision set to 1).
	// A label has at most one unfinished rollout (pending, baking, paused,
	// halted): ErrConflict when it already has one, unless that one is
	// passed as supersede. When supersede is non-nil, that rollout is moved
	// to StateSuperseded in the same transaction; ErrConflict if it is not
	// in the state the caller read (its Revision). ErrNotFound when the
	// version does not exist.
	CreateRollout(ctx context.Context, r *Rollout, supersede *Rollout, audit AuditEntry) error
	GetRollout(ctx context.Context, id string) (Rollout, error)
	// ListRollouts returns rollouts of label ("" = all), newest first;
	// states filters when non-empty.
	ListRollouts(ctx context.Context, label string, states []string, p Page) ([]Rollout, string, error)
	// UpdateRollout writes r if the stored revision equals r.Revision and
	// increments it (r.Revision is updated); ErrConflict otherwise, and
	// when r would become a second unfinished rollout of its label.
	UpdateRollout(ctx context.Context, r *Rollout, audit AuditEntry) error
	// LastCompleted returns the newest completed rollout's version of label;
	// "" when none.
	LastCompleted(ctx context.Context, label string) (string, error)

	// PutPin creates or replaces the pin of org+label.
	PutPin(ctx context.Context, pin Pin, audit AuditEntry) error
	// DeletePin removes it; ErrNotFound when there is none.
	DeletePin(ctx context.Context, org, label string, audit AuditEntry) error
	// ListPins lists pins, filtered by org and/or label when non-empty,
	// expired ones included only when withExpired (as of now).
	ListPins(ctx context.Context, org, label string, withExpired bool, now time.Time, p Page) ([]Pin, string, error)

	ListAudit(ctx context.Context, f AuditFilter, p Page) ([]AuditEntry, string, error) // newest first

	CreateToken(ctx context.Context, t Token, audit AuditEntry) error
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	CountTokens(ctx context.Context, role string) (int, error)

	// AppendEvents stores job events durably before returning; an event
	// whose JobID is already stored is ignored (idempotent retries).
	// Returns how many were new.
	AppendEvents(ctx context.Context, events []JobEvent) (int, error)
	// CountJobs aggregates events of label+version in ring (-1 = any ring)
	// that started at or after since.
	CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (JobCounts, error)

	// AssignRun records which version a workflow run got for label, first
	// write wins: it returns the version stored for (runID, label), the
	// given one when new. Keyed by run and label because one run may use
	// several images. Entries older than the store's retention may be
	// forgotten. It need not be durable when it returns: a crash of the
	// machine or database server may forget the latest assignments.
	AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error)
	// ForgetRuns drops run assignments of label (rollback, revocation) so
	// affinity never pins a run to a version that was taken back.
	ForgetRuns(ctx context.Context, label string) error

	// AddServed adds resolve counts (batched by the server) into
	// whole-minute buckets (Minute is truncated). Like AssignRun it need
	// not be durable when it returns: such a crash may drop the latest counts.
	AddServed(ctx context.Context, counts []Served) error
	// ServedSince sums counts of label per version, ring and reason over
	// whole minutes, from the minute containing since on; each result's
	// Minute is the latest bucket summed.
	ServedSince(ctx context.Context, label string, since time.Time) ([]Served, error)

	// Generation is a number that increases whenever anything that resolve
	// depends on changes (rollouts, pins, versions, rings); replicas poll it
	// to refresh their in-memory routing cheaply.
	Generation(ctx context.Context) (int64, error)

	// AcquireLease takes or renews the named lease for holder until
	// now+ttl; ok is false while another holder's lease is unexpired.
	// fence increases every time the lease changes hands.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (ok bool, fence int64, err error)
	ReleaseLease(ctx context.Context, name, holder string) error

	Close() error
}

// AuditFilter narrows ListAudit; empty fields match everything.
type AuditFilter struct {
	Actor, Action, SubjectPrefix string
	Since, Until                 time.Time
}
