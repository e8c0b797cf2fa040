// Package api is the HTTP API's wire contract under /api/v1, shared by the server and its client.
//
// It holds the request and response bodies that are not domain types of
// package rollout, the list envelope, the error body and the error codes
// with their mapping to the rollout.Err* kinds. Changing a JSON name here
// changes the API.
package api

import (
	"encoding/json"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// List is the shape of every paginated response: pass Next as ?after= to
// get the following page; it is empty on the last page.
type List[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// CreateTokenRequest asks for a new API token.
type CreateTokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// ExpiresAt, when set, is when the token stops working.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// CreateTokenResponse carries the token in clear, shown only this once.
type CreateTokenResponse struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// PushVersionRequest registers a version with its evidence: the snapshot
// from `imagegate scan` and the report from `imagegate check -o json`.
type PushVersionRequest struct {
	Version     string          `json:"version"`
	Snapshot    json.RawMessage `json:"snapshot,omitempty"`
	CheckReport json.RawMessage `json:"checkReport,omitempty"`
	// Image is the image the version was built as (imagegate image push
	// --ref); re-verification pulls it by its digest.
	Image *rollout.ImageRef `json:"image,omitempty"`
}

// ReasonRequest is the body of actions that record why they were taken.
type ReasonRequest struct {
	Reason string `json:"reason"`
}

// Rings is the ring plan of an image, or the global plan.
type Rings struct {
	Label string         `json:"label,omitempty"`
	Rings []rollout.Ring `json:"rings"`
}

// StartRolloutRequest starts rolling a version out. BakeTimes override the
// bake time of rings by name, as Go durations ("30m").
type StartRolloutRequest struct {
	Label       string            `json:"label"`
	Version     string            `json:"version"`
	Expedited   bool              `json:"expedited,omitempty"`
	BakeTimes   map[string]string `json:"bakeTimes,omitempty"`
	Force       bool              `json:"force,omitempty"`
	ForceReason string            `json:"forceReason,omitempty"`
	// AutoRollback rolls back by itself when a ring turns unhealthy.
	AutoRollback bool `json:"autoRollback,omitempty"`
	// Reason is why the rollout starts, kept in its audit entry
	// (optional; servers before it refuse the field as unknown).
	Reason string `json:"reason,omitempty"`
}

// SetPinRequest pins org+label (from the path) to a version until ExpiresAt.
type SetPinRequest struct {
	Version   string    `json:"version"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Owner is who to ask about the pin; the caller when empty.
	Owner           string `json:"owner,omitempty"`
	OverrideRevoked bool   `json:"overrideRevoked,omitempty"`
}

// EventsRequest is a batch of job outcomes; a bare JSON array of events is
// accepted too.
type EventsRequest struct {
	Events []rollout.JobEvent `json:"events"`
}

// EventsResponse says how many events were received and how many were
// new (the rest had a jobId already stored: retries are harmless).
type EventsResponse struct {
	Received int `json:"received"`
	New      int `json:"new"`
}
