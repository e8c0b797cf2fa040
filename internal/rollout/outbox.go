package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Alert kinds: what the decision that raised the alert did.
const (
	AlertHalt       = "halt"       // the rollout was halted
	AlertRollback   = "rollback"   // the rollout was rolled back
	AlertEscalation = "escalation" // user reports from several orgs named one signature
	AlertDryRun     = "dry-run"    // a regression was found; policy said decide and record, not act
)

// Alert is one decision worth telling people about. It is what the
// outbox stores and what internal/alert renders for each target's format.
type Alert struct {
	// ID names the decision and is the base of the outbox's dedupe keys:
	// deriving it from the decision (AlertID: rollout id + the revision
	// the decision wrote) rather than from the clock means a controller
	// that repeats the decision after a crash produces the same ID, and
	// the outbox keeps one alert.
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Label       string `json:"label"`
	Version     string `json:"version"`
	FromVersion string `json:"fromVersion,omitempty"`
	RolloutID   string `json:"rolloutId,omitempty"`
	Ring        int    `json:"ring"`
	RingName    string `json:"ringName,omitempty"`
	// Signature is the error signature the decision is about (empty for a
	// decision on the aggregate failure rate).
	Signature AlertSignature `json:"signature"`
	// ProbableCause lists the few best-matching entries of the diff
	// between Version and FromVersion, best first.
	ProbableCause []AlertCause `json:"probableCause,omitempty"`
	// Summary is one or two sentences for people: what was decided and why.
	Summary string `json:"summary"`
	// Link is the path of the analysis (AnalysisPath); senders make it
	// absolute with the server's external URL.
	Link      string    `json:"link"`
	CreatedAt time.Time `json:"createdAt"`
	// Details is the decision's evidence as recorded in its audit entry.
	Details json.RawMessage `json:"details,omitempty"`
}

// AlertSignature identifies an error signature by its stable id and shows
// its template.
type AlertSignature struct {
	ID       string `json:"id,omitempty"`
	Template string `json:"template,omitempty"`
}

// AlertCause is one diff entry that may explain the signature.
type AlertCause struct {
	Identity string `json:"identity"` // e.g. "runtime/python@3.7/module/sqlite3"
	Why      string `json:"why"`      // which tokens matched and where
}

// AlertID is the Alert.ID of the decision that moved rollout id to
// revision: one decision, one ID, however often it is retried.
func AlertID(rolloutID string, revision int64) string {
	return fmt.Sprintf("rollout/%s/rev/%d", rolloutID, revision)
}

// AnalysisPath is the API path of a rollout's analysis (Alert.Link).
func AnalysisPath(rolloutID string) string {
	return "/api/v1/rollouts/" + rolloutID + "/analysis"
}

// CheckAlert is the refusal every store and sender makes before an alert
// is queued.
func CheckAlert(a Alert) error {
	switch {
	case a.ID == "":
		return fmt.Errorf("alert: %w: the alert needs an ID (rollout.AlertID)", ErrInvalid)
	case a.Label == "":
		return fmt.Errorf("alert %s: %w: the alert needs a label", a.ID, ErrInvalid)
	}
	switch a.Kind {
	case AlertHalt, AlertRollback, AlertEscalation, AlertDryRun, AlertDrift, AlertUnreachable, AlertNotice:
	default:
		return fmt.Errorf("alert %s: %w: kind %q is none of halt, rollback, escalation, dry-run, drift, unreachable, notice", a.ID, ErrInvalid, a.Kind)
	}
	return nil
}

// OutboxItem is one alert for one target, kept until the target
// acknowledged it.
type OutboxItem struct {
	ID int64 `json:"id"` // assigned by the store
	// Key is the caller's dedupe key, unique in the outbox: by convention
	// Alert.ID + "/" + the target's id (alert.Target.ID).
	Key string `json:"key"`
	// URL and Format are the target, copied into the item so that a
	// restart with another config still delivers what was promised.
	// URL may hold a secret (Slack and Teams webhooks do): show it only
	// redacted.
	URL       string    `json:"-"`
	Format    string    `json:"format"`
	Alert     Alert     `json:"alert"`
	CreatedAt time.Time `json:"createdAt"`

	// Delivery state, maintained by Claim, Ack and Fail.
	Attempts      int       `json:"attempts"`      // claims so far
	NextAttemptAt time.Time `json:"nextAttemptAt"` // not claimable before
	ClaimedBy     string    `json:"claimedBy,omitempty"`
	ClaimedUntil  time.Time `json:"claimedUntil,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	DeliveredAt   time.Time `json:"deliveredAt,omitzero"` // zero until acknowledged
}

// Delivered reports whether the target acknowledged the item.
func (it OutboxItem) Delivered() bool { return !it.DeliveredAt.IsZero() }

// CheckOutboxItem is the refusal every store makes before Enqueue touches
// its database.
func CheckOutboxItem(it OutboxItem) error {
	if it.Key == "" || it.URL == "" || it.Format == "" {
		return fmt.Errorf("outbox item %q: %w: key, url and format are required", it.Key, ErrInvalid)
	}
	if len(it.Key) > 512 || strings.ContainsAny(it.Key, "\x00\n") {
		return fmt.Errorf("outbox item %q: %w: the key must be one line of at most 512 bytes", it.Key, ErrInvalid)
	}
	return CheckAlert(it.Alert)
}

// OutboxFilter narrows ListOutbox; empty fields match everything.
type OutboxFilter struct {
	KeyPrefix   string // e.g. "rollout/r-12/" for one rollout's alerts
	Undelivered bool   // only items not yet acknowledged
}

// OutboxStore is the durable alert outbox: alerts wait in it, per target,
// until the target acknowledged them, so a restart or a dead receiver
// loses none and several replicas never both send one.
//
// Why a dedupe key rather than one transaction with the decision's audit
// entry: threading outbox rows through every audit-writing method of
// Store would change all of them. Instead a decision's alerts are keyed by
// the decision (Alert.ID from AlertID: rollout id + the revision the
// decision wrote) and Enqueue ignores keys it has. The controller writes
// the decision, then enqueues; if it crashes in between, the next leader
// re-enqueues the alerts of recent decisions it finds in the store
// (halted, rolled-back rollouts and their revision) and gets exactly one
// item per target, never two. The window without an alert row is one
// controller pass, not a lost alert.
//
// Contract: safe for concurrent use by many goroutines and several
// processes (replicas) on one database. ErrInvalid for CheckOutboxItem's
// refusals, before the database is touched. Times are stored to the
// microsecond and come back in UTC.
type OutboxStore interface {
	// Enqueue stores items durably before returning, in one transaction:
	// all or none. An item whose Key is already stored (delivered or not)
	// is ignored, and so is a repeated Key within items: the first wins.
	// Returns how many were new. ID is assigned by the store;
	// NextAttemptAt defaults to CreatedAt, CreatedAt to the current time.
	Enqueue(ctx context.Context, items []OutboxItem) (int, error)

	// Claim takes at most limit undelivered items due at now
	// (NextAttemptAt ≤ now) whose claim is free or expired, marks them
	// claimed by holder until now+leaseFor, counts an attempt, and returns
	// them oldest due first. Two concurrent Claims never return the same
	// item while its claim is unexpired, so a sender that finishes within
	// leaseFor is the only one sending it. A holder reclaiming its own
	// expired item is allowed. No due item: an empty slice, no error.
	Claim(ctx context.Context, holder string, now time.Time, leaseFor time.Duration, limit int) ([]OutboxItem, error)

	// Ack marks item id delivered at now and releases its claim. It does
	// not check the claim: the receiver has the alert, whoever claimed it
	// last, and forgetting that would send it again. Idempotent: acking a
	// delivered item keeps the first DeliveredAt. ErrNotFound when there
	// is no item id.
	Ack(ctx context.Context, id int64, now time.Time) error

	// Fail records a failed attempt by holder: lastErr, and no new claim
	// before nextAttempt (the sender's backoff); the claim is released.
	// ErrConflict when holder no longer holds the claim (it expired and
	// another holder took it, or the item was acknowledged): the newer
	// holder's outcome stands. ErrNotFound when there is no item id.
	Fail(ctx context.Context, id int64, holder, lastErr string, nextAttempt time.Time) error

	// ListOutbox pages through items, newest first, for inspection.
	ListOutbox(ctx context.Context, f OutboxFilter, p Page) ([]OutboxItem, string, error)
}

// Alerter raises an alert for a decision. The controller and the report
// handler call it after the decision is stored; internal/alert's Outbox
// implements it over an OutboxStore.
//
// Contract: idempotent on a.ID (raising the same decision again, say
// after a crash, queues nothing new); durable when it returns nil; safe
// for concurrent use. It must not wait for delivery.
type Alerter interface {
	Alert(ctx context.Context, a Alert) error
}

// PrepareOutbox checks items and fills their defaults (CreatedAt now,
// NextAttemptAt CreatedAt), as every store's Enqueue does first.
func PrepareOutbox(items []OutboxItem, now time.Time) ([]OutboxItem, error) {
	out := make([]OutboxItem, len(items))
	for i, it := range items {
		if err := CheckOutboxItem(it); err != nil {
			return nil, fmt.Errorf("enqueue item %d: %w", i, err)
		}
		if it.CreatedAt.IsZero() {
			it.CreatedAt = now
		}
		if it.NextAttemptAt.IsZero() {
			it.NextAttemptAt = it.CreatedAt
		}
		out[i] = it
	}
	return out, nil
}

// CheckClaim is the refusal every store makes before Claim touches its
// database.
func CheckClaim(holder string, leaseFor time.Duration, limit int) error {
	if holder == "" || leaseFor <= 0 || limit <= 0 {
		return fmt.Errorf("claim outbox items: %w: a holder, a positive lease and a positive limit are required", ErrInvalid)
	}
	return nil
}
