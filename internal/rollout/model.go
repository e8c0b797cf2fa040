// Package rollout is the control plane's domain: images and their versions,
// rings, progressive rollouts through them, pins, and the resolve decision
// that tells each job which image version it gets.
//
// The types here are the language the store, the controller and the HTTP
// server share. Persistence is behind Store; the logic is in Service and
// Controller.
package rollout

import (
	"encoding/json"
	"errors"
	"time"
)

// Errors that callers map to HTTP statuses and exit codes (see server).
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")     // already exists, or changed meanwhile (stale revision)
	ErrInvalid      = errors.New("invalid")      // the request itself is wrong
	ErrForbidden    = errors.New("forbidden")    // the caller's role does not allow it
	ErrPrecondition = errors.New("precondition") // e.g. rolling out a version whose gate failed without force
	// ErrKeyReused is an idempotency key sent again with a different
	// request (HTTP 422, as the IETF draft on Idempotency-Key says). It is
	// a conflict: errors.Is(err, ErrConflict) holds, so a caller that knows
	// only the kinds above still reads it right.
	ErrKeyReused error = keyReused{}
)

type keyReused struct{}

func (keyReused) Error() string        { return "idempotency key reused" }
func (keyReused) Is(target error) bool { return target == ErrConflict }

// Gate verdicts of a version, from `imagegate check`.
const (
	GatePass    = "pass"
	GateFail    = "fail"
	GateUnknown = "unknown"
)

// Image is a label runners ask for, such as "ubuntu-22.04".
type Image struct {
	Label     string    `json:"label"`
	CreatedAt time.Time `json:"createdAt"`
}

// Version is one build of an image, registered with its evidence.
type Version struct {
	Label   string `json:"label"`
	Version string `json:"version"`
	// Gate is the check verdict: pass, fail or unknown (no report given).
	Gate string `json:"gate"`
	// Snapshot and CheckReport are stored as given (imagegate JSON).
	Snapshot    json.RawMessage `json:"snapshot,omitempty"`
	CheckReport json.RawMessage `json:"checkReport,omitempty"`
	// Image is the image the version was built as, when pushed with --ref
	// (re-verification pulls it by its digest).
	Image *ImageRef `json:"image,omitempty"`
	// Revoked versions are never served again, pins to them included,
	// unless a pin overrides with a visible reason.
	Revoked       bool      `json:"revoked"`
	RevokedReason string    `json:"revokedReason,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
}

// Ring is one stage of a rollout. Ring 0 is named organisations; each later
// ring takes Percent of all organisations by a stable hash of the org id
// (cumulative: a ring with Percent 50 covers the hash range [0,50) minus
// the earlier rings); the last ring is everyone (Percent 100).
type Ring struct {
	Name    string   `json:"name"`
	Orgs    []string `json:"orgs,omitempty"`
	Percent float64  `json:"percent"`
	// BakeTime must elapse, and MinJobs jobs must be seen, before the
	// rollout may leave the ring.
	BakeTime time.Duration `json:"bakeTime"`
	MinJobs  int           `json:"minJobs"`
	// ControlPercent of the ring's orgs stay on the previous version while
	// the ring bakes: a concurrent baseline for telemetry. They join when
	// the ring is left.
	ControlPercent float64 `json:"controlPercent"`
	// ManualApproval holds the rollout in this ring until someone promotes it.
	ManualApproval bool `json:"manualApproval"`
	// NoticePeriod: the rollout does not enter this ring before this long
	// after its change notices went out (NoticeGate; for ring 0 the
	// rollout stays pending meanwhile). Expedited rollouts skip it, audited.
	NoticePeriod time.Duration `json:"noticePeriod,omitempty"`
}

// State is where a rollout is in its life; stored and sent as its string.
type State string

// Rollout states.
const (
	StatePending    State = "pending"
	StateBaking     State = "baking"
	StatePaused     State = "paused"
	StateHalted     State = "halted"
	StateRolledBack State = "rolled-back"
	StateSuperseded State = "superseded"
	StateCompleted  State = "completed"
)

// Rollout is one version's progress through the rings of its image.
type Rollout struct {
	ID      string `json:"id"`
	Label   string `json:"label"`
	Version string `json:"version"`
	// FromVersion is what the rings ran before (the last completed version).
	FromVersion string `json:"fromVersion"`
	State       State  `json:"state"`
	// Ring is the index of the ring the rollout is baking in; rings below
	// it serve Version.
	Ring          int       `json:"ring"`
	RingStartedAt time.Time `json:"ringStartedAt"`
	// Rings is a copy of the ring plan taken at start, with any expedited
	// policy applied, so a config change does not move a running rollout.
	Rings []Ring `json:"rings"`
	// Expedited marks a hotfix: shorter bake times, every gate still applies.
	Expedited bool `json:"expedited"`
	// AutoRollback: when the health gate finds the rollout unhealthy, roll
	// it back instead of only halting it. Stored with the rollout so the
	// choice survives a restart and holds on whichever replica runs the
	// controller.
	AutoRollback bool `json:"autoRollback"`
	// Supersedes is the rollout this one replaced, if any.
	Supersedes string `json:"supersedes,omitempty"`
	// Forced with ForceReason when the version's gate failed.
	Forced      bool   `json:"forced"`
	ForceReason string `json:"forceReason,omitempty"`
	// Approved is the highest ring index a person has promoted out of.
	Approved  int       `json:"approved"`
	Reason    string    `json:"reason,omitempty"` // why it was paused, halted, rolled back
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Revision increments on every change; updates name the revision they
	// read (optimistic concurrency), so a controller that crashed or lost
	// its lease cannot overwrite a newer decision.
	Revision int64 `json:"revision"`
}

// Pin holds an organisation's label to a version.
type Pin struct {
	Org       string    `json:"org"`
	Label     string    `json:"label"`
	Version   string    `json:"version"`
	Owner     string    `json:"owner"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expiresAt"`
	// OverrideRevoked keeps the pin in force on a revoked version; its
	// reason is shown with every resolve.
	OverrideRevoked bool      `json:"overrideRevoked,omitempty"`
	CreatedBy       string    `json:"createdBy"`
	CreatedAt       time.Time `json:"createdAt"`
}

// AuditEntry records one state change.
type AuditEntry struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`  // e.g. "rollout.start", "pin.set"
	Subject string          `json:"subject"` // e.g. "rollout/r-12", "pin/org-a/ubuntu-22.04"
	Reason  string          `json:"reason,omitempty"`
	Details json.RawMessage `json:"details,omitempty"`
}

// Resolution is the answer to "which version does this job get, and why".
type Resolution struct {
	Label   string `json:"label"`
	Version string `json:"version"`
	// Reason is one of "pin", "rollout", "control", "default", "affinity".
	Reason    string `json:"reason"`
	RolloutID string `json:"rolloutId,omitempty"`
	Ring      int    `json:"ring"`
	Detail    string `json:"detail,omitempty"` // human explanation
}

// Job outcomes.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeCanceled  = "canceled"
)

// JobEvent is one job's outcome, reported by a runner.
type JobEvent struct {
	JobID   string `json:"jobId"`
	Org     string `json:"org"`
	Label   string `json:"label"`
	Version string `json:"version"`
	// Pipeline is the stable id of the customer's pipeline definition
	// (org/repo/.github/workflows/ci.yml); events without it count in job
	// totals but not in the telemetry analysis. RunID is the workflow run.
	Pipeline string `json:"pipeline,omitempty"`
	RunID    string `json:"runId,omitempty"`
	// Ring is what the runner said; the server replaces it with the ring
	// it counts the job in for gates (see Service.IngestEvents), -1 for
	// none.
	Ring       int       `json:"ring"`
	Outcome    string    `json:"outcome"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMs int64     `json:"durationMs"`
	// ErrorText is the tail of the failed step's log; the server keeps
	// its last MaxErrorText bytes, cut at a line boundary.
	ErrorText string `json:"errorText,omitempty"`
}

// JobCounts aggregates job events.
type JobCounts struct {
	Total, Succeeded, Failed, Canceled int64
}

// Served counts resolves answered per version and ring (observed status).
type Served struct {
	Label   string    `json:"label"`
	Version string    `json:"version"`
	Ring    int       `json:"ring"`
	Reason  string    `json:"reason"`
	Minute  time.Time `json:"minute"`
	Count   int64     `json:"count"`
}

// Token roles.
const (
	RoleAdmin  = "admin"
	RoleRunner = "runner"
	// RoleOrgPrefix + org id: read and pin that organisation only.
	RoleOrgPrefix = "org:"
)

// Token is an API credential; only its SHA-256 hash is stored.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt, when set, is when the token stops working.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// LastUsedAt is when a replica last looked the token up: at most a
	// token cache TTL older than its last use.
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
	// RevokedAt, when set, is when the token was revoked; it never works
	// again and its secret cannot be registered again.
	RevokedAt time.Time `json:"revokedAt,omitzero"`
}

// Usable says why t may not authenticate a request at now ("" when it may).
func (t Token) Usable(now time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return "revoked at " + t.RevokedAt.UTC().Format(time.RFC3339)
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return "expired at " + t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return ""
}

// Page asks for one page of a list: items after the cursor, at most Limit.
type Page struct {
	After string
	Limit int
}
