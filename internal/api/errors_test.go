package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// TestErrorCodesRoundTrip pins the code table both ways: what the server
// sends for an error kind is what the client maps back to that kind.
func TestErrorCodesRoundTrip(t *testing.T) {
	tests := []struct {
		kind   error
		status int
		code   string
	}{
		{api.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated"},
		{rollout.ErrNotFound, http.StatusNotFound, "not_found"},
		{rollout.ErrConflict, http.StatusConflict, "conflict"},
		{rollout.ErrKeyReused, http.StatusUnprocessableEntity, "idempotency_key_reused"},
		{rollout.ErrInvalid, http.StatusBadRequest, "invalid"},
		{rollout.ErrForbidden, http.StatusForbidden, "forbidden"},
		{rollout.ErrPrecondition, http.StatusPreconditionFailed, "precondition_failed"},
		{api.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
		{api.ErrRateLimited, http.StatusTooManyRequests, "rate_limited"},
		{api.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			status, code := api.Classify(fmt.Errorf("context: %w", tt.kind))
			if status != tt.status || code != tt.code {
				t.Errorf("Classify = %d %q, want %d %q", status, code, tt.status, tt.code)
			}
			if got := api.KindOf(code); !errors.Is(got, tt.kind) {
				t.Errorf("KindOf(%q) = %v, want %v", code, got, tt.kind)
			}
		})
	}
	if status, code := api.Classify(errors.New("disk on fire")); status != http.StatusInternalServerError || code != api.CodeInternal {
		t.Errorf("unknown error: Classify = %d %q, want 500 %q", status, code, api.CodeInternal)
	}
	for _, code := range []string{api.CodeInternal, "", "teapot"} {
		if got := api.KindOf(code); got != nil {
			t.Errorf("KindOf(%q) = %v, want nil", code, got)
		}
	}
}

// TestWireJSON pins JSON names that clients depend on.
func TestWireJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"error body", api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeConflict, Message: "m"}}, `{"error":{"code":"conflict","message":"m"}}`},
		{"last page", api.List[int]{Items: []int{1}}, `{"items":[1]}`},
		{"page with next", api.List[string]{Items: []string{}, Next: "c"}, `{"items":[],"next":"c"}`},
		{"events response", api.EventsResponse{Received: 2, New: 1}, `{"received":2,"new":1}`},
		{"start rollout", api.StartRolloutRequest{Label: "l", Version: "v"}, `{"label":"l","version":"v"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(b)); diff != "" {
				t.Errorf("JSON (-want +got):\n%s", diff)
			}
		})
	}
}
