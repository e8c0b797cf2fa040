package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Change notices: organisations subscribe to labels; when a rollout starts
// every subscriber whose filters match an entry of the version's diff gets
// a notice (the release notes, the matching entries, removals and
// downgrades first, and when the rollout reaches its ring) through the
// alert outbox.

// AlertNotice is the alert kind of a change notice.
const AlertNotice = "notice"

// NoticeActor names notices in the audit log.
const NoticeActor = "system:notices"

// Subscription is one organisation's wish to hear about a label's
// rollouts.
type Subscription struct {
	ID    string `json:"id"` // assigned by the store
	Org   string `json:"org"`
	Label string `json:"label"`
	// URL and Format are the webhook notices are POSTed to (format json,
	// slack or teams, as for alerts). With OrgTarget the organisation's
	// alert target configured on the server is used instead.
	URL       string `json:"url,omitempty"`
	Format    string `json:"format,omitempty"`
	OrgTarget bool   `json:"orgTarget,omitempty"`
	// Filters are diff identity globs (the changes file's patterns, e.g.
	// tool/php*, runtime/python@3.7*): a notice is sent only when an entry
	// of the diff matches one. None: every rollout is noticed.
	Filters   []string  `json:"filters,omitempty"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
}

// MaxFilters bounds a subscription's filters.
const MaxFilters = 64

// CheckSubscription is the refusal every store makes before
// CreateSubscription touches its database (the filters' syntax is checked
// by Notices, which knows the diff's patterns).
func CheckSubscription(s Subscription) error {
	switch {
	case s.Org == "" || s.Label == "":
		return fmt.Errorf("subscription: %w: org and label are required", ErrInvalid)
	case s.OrgTarget && s.URL != "":
		return fmt.Errorf("subscription of %s to %s: %w: give a url or orgTarget, not both", s.Org, s.Label, ErrInvalid)
	case !s.OrgTarget && s.URL == "":
		return fmt.Errorf("subscription of %s to %s: %w: give a webhook url, or orgTarget for the organisation's alert target", s.Org, s.Label, ErrInvalid)
	case len(s.Filters) > MaxFilters:
		return fmt.Errorf("subscription of %s to %s: %w: at most %d filters", s.Org, s.Label, ErrInvalid, MaxFilters)
	}
	if err := checkWebhook(s.URL, s.Format); err != nil {
		return fmt.Errorf("subscription of %s to %s: %w", s.Org, s.Label, err)
	}
	return nil
}

// checkWebhook refuses a webhook that is not an absolute http(s) URL
// ("" passes: the caller decides whether one is needed) or a format
// alerts do not have.
func checkWebhook(raw, format string) error {
	if raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: the url must be an absolute http:// or https:// URL", ErrInvalid)
		}
	}
	switch format {
	case "", "json", "slack", "teams":
	default:
		return fmt.Errorf("%w: format %q is none of json, slack, teams", ErrInvalid, format)
	}
	return nil
}

// OrgTarget is the webhook an organisation keeps on the server for its
// notices: subscriptions with OrgTarget are sent there, so a team that
// moves its channel changes one target, not every subscription.
type OrgTarget struct {
	Org string `json:"org"`
	// URL and Format as for a subscription's webhook (format json, slack
	// or teams; "" is json).
	URL       string    `json:"url"`
	Format    string    `json:"format,omitempty"`
	UpdatedBy string    `json:"updatedBy"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// CheckOrgTarget is the refusal every store makes before SetOrgTarget
// touches its database.
func CheckOrgTarget(t OrgTarget) error {
	if t.Org == "" || t.URL == "" {
		return fmt.Errorf("alert target: %w: org and url are required", ErrInvalid)
	}
	if err := checkWebhook(t.URL, t.Format); err != nil {
		return fmt.Errorf("alert target of %s: %w", t.Org, err)
	}
	return nil
}

// OrgTargetStore holds each organisation's alert target.
type OrgTargetStore interface {
	// SetOrgTarget creates or replaces t.Org's target with audit (setting
	// the same target again is no error). ErrInvalid for CheckOrgTarget's
	// refusals. Returns t as stored (UpdatedAt in microseconds, UTC).
	SetOrgTarget(ctx context.Context, t OrgTarget, audit AuditEntry) (OrgTarget, error)
	// GetOrgTarget returns ErrNotFound when org has none.
	GetOrgTarget(ctx context.Context, org string) (OrgTarget, error)
	// DeleteOrgTarget removes org's target with audit; ErrNotFound when
	// it has none. Its subscriptions with OrgTarget stay and are skipped
	// (logged) until a target is set again.
	DeleteOrgTarget(ctx context.Context, org string, audit AuditEntry) error
}

// PrepareOrgTarget is CheckOrgTarget plus the defaults both stores apply.
func PrepareOrgTarget(t OrgTarget) (OrgTarget, error) {
	if err := CheckOrgTarget(t); err != nil {
		return t, err
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = time.Now()
	}
	t.UpdatedAt = t.UpdatedAt.UTC().Truncate(time.Microsecond)
	return t, nil
}

// SubscriptionFilter narrows ListSubscriptions; empty fields match all.
type SubscriptionFilter struct {
	Org, Label string
}

// NoticeRun records that a rollout's notices are in the outbox.
type NoticeRun struct {
	RolloutID string    `json:"rolloutId"`
	Label     string    `json:"label"`
	Version   string    `json:"version"`
	Notices   int       `json:"notices"` // outbox items queued
	SentAt    time.Time `json:"sentAt"`
}

// SubscriptionStore holds subscriptions and when each rollout's notices
// went out.
//
// Contract as Store's; none of it is routing, so Generation is not bumped.
type SubscriptionStore interface {
	// CreateSubscription stores s with audit; the ID is assigned (s is
	// returned as stored). ErrInvalid for CheckSubscription's refusals.
	CreateSubscription(ctx context.Context, s Subscription, audit AuditEntry) (Subscription, error)
	// ListSubscriptions pages through subscriptions in creation order.
	ListSubscriptions(ctx context.Context, f SubscriptionFilter, p Page) ([]Subscription, string, error)
	// DeleteSubscription removes id of org (an org deletes only its own);
	// ErrNotFound when org has no subscription id.
	DeleteSubscription(ctx context.Context, org, id string, audit AuditEntry) error
	// RecordNotices stores run with audit unless run.RolloutID is recorded
	// (first wins: a replica that fanned out again after a crash keeps the
	// first time, which the notice period counts from). Reports whether
	// it was new.
	RecordNotices(ctx context.Context, run NoticeRun, audit AuditEntry) (bool, error)
	// NoticesSent returns rolloutID's run; ErrNotFound before its notices
	// went out.
	NoticesSent(ctx context.Context, rolloutID string) (NoticeRun, error)
}

// NoticeEntry is one diff entry as a notice shows it.
type NoticeEntry struct {
	ID    string `json:"id"`
	Class string `json:"class"` // removed, downgraded, broken, added, upgraded, …
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// ChangeNotice is what one subscriber is told, the Details of its alert and an
// item of GET /api/v1/orgs/{org}/upcoming.
type ChangeNotice struct {
	Org         string `json:"org"`
	Label       string `json:"label"`
	Version     string `json:"version"`
	FromVersion string `json:"fromVersion,omitempty"`
	RolloutID   string `json:"rolloutId"`
	// Ring is the subscriber's ring; ReachesAt is the earliest it can get
	// the version (bake times and notice periods of the rings before;
	// minimum jobs, approvals and health may make it later).
	Ring      int       `json:"ring"`
	RingName  string    `json:"ringName,omitempty"`
	ReachesAt time.Time `json:"reachesAt"`
	Reached   bool      `json:"reached"`
	// Entries are the diff's entries matching the subscription's filters
	// (all of them without filters), removals and downgrades first.
	Entries []NoticeEntry `json:"entries"`
	// ReleaseNotes is the diff as Markdown.
	ReleaseNotes   string `json:"releaseNotes"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
}

// details is the notice as its alert's Details.
func (n ChangeNotice) details() json.RawMessage {
	b, _ := json.Marshal(n)
	return b
}

func (n ChangeNotice) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s is rolling out", n.Label, n.Version)
	if n.FromVersion != "" {
		fmt.Fprintf(&b, " (replacing %s)", n.FromVersion)
	}
	if n.Reached {
		fmt.Fprintf(&b, "; your organisation's ring %d is already on it", n.Ring)
	} else {
		fmt.Fprintf(&b, "; it reaches your organisation's ring %d at %s at the earliest", n.Ring, n.ReachesAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	if len(n.Entries) > 0 {
		shown := n.Entries[:min(len(n.Entries), 5)]
		parts := make([]string, len(shown))
		for i, e := range shown {
			parts[i] = e.Class + " " + e.ID
		}
		fmt.Fprintf(&b, ". %d changes concern you: %s", len(n.Entries), strings.Join(parts, ", "))
		if len(n.Entries) > len(shown) {
			fmt.Fprintf(&b, ", and %d more", len(n.Entries)-len(shown))
		}
	}
	b.WriteString(".")
	return b.String()
}

// PrepareSubscription checks s and fills its defaults (a random ID,
// CreatedAt now), as every store's CreateSubscription does first.
func PrepareSubscription(s Subscription) (Subscription, error) {
	if err := CheckSubscription(s); err != nil {
		return s, err
	}
	if s.ID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return s, fmt.Errorf("subscription id: %w", err)
		}
		s.ID = "sub-" + hex.EncodeToString(b[:])
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = time.Now()
	}
	s.CreatedAt = s.CreatedAt.UTC().Truncate(time.Microsecond)
	if s.Filters == nil {
		s.Filters = []string{}
	}
	return s, nil
}
