// Package alert tells people about the control plane's decisions (halts,
// rollbacks, escalations, dry runs): it queues each decision's alert in
// the store's durable outbox, one item per configured target (Outbox), and
// a Sender on every replica delivers them with retries until each target
// acknowledged (a 2xx), in the target's format: json (the documented
// AlertPayload of internal/server/openapi.yaml), slack or teams.
//
// Delivery is at least once with one sender at a time: the outbox's claim
// lease outlives the POST's timeout, so two replicas never both send an
// item unless a sender stalls for longer than the lease between its POST
// and its Ack. Receivers that must never see a repeat can key on the
// X-Imagegate-Alert-Key header (the item's dedupe key).
package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Formats of a target's request body.
const (
	FormatJSON  = "json"  // AlertPayload, documented in the OpenAPI file
	FormatSlack = "slack" // a Slack incoming-webhook message (text + blocks)
	FormatTeams = "teams" // a Teams message with an Adaptive Card (Workflows and connector webhooks)
)

// Target is one webhook receiver, as configured under `alerts:` in the
// serve config: `{url: https://hooks.slack.com/services/..., format: slack}`.
type Target struct {
	// URL receives a POST per alert; http or https. It often embeds a
	// secret (Slack's and Teams' do), so it is logged and recorded only
	// redacted (Redacted).
	URL string `json:"url" yaml:"url"`
	// Format is json (the default when empty), slack or teams.
	Format string `json:"format,omitempty" yaml:"format,omitempty"`
}

// format is t's Format with the default applied.
func (t Target) format() string {
	if t.Format == "" {
		return FormatJSON
	}
	return t.Format
}

// Validate reports a target that can never be delivered to, before
// anything is queued for it.
func (t Target) Validate() error {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("alert target %s: %w: the url must be an absolute http:// or https:// URL", t.Redacted(), rollout.ErrInvalid)
	}
	switch t.format() {
	case FormatJSON, FormatSlack, FormatTeams:
	default:
		return fmt.Errorf("alert target %s: %w: format %q is none of json, slack, teams", t.Redacted(), rollout.ErrInvalid, t.Format)
	}
	return nil
}

// ID identifies the target in dedupe keys: a hash of format and URL, so
// it is stable across restarts and replicas, differs between two targets,
// and does not reveal the URL's secret.
func (t Target) ID() string {
	h := sha256.Sum256([]byte(t.format() + " " + t.URL))
	return hex.EncodeToString(h[:6])
}

// Redacted is the URL as it may be logged: scheme and host only.
func (t Target) Redacted() string { return redact(t.URL) }

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<invalid url>"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}
