package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

// reportServer answers POST /api/v1/reports with answer(n) for the n-th
// request (from 0) and records each request's Idempotency-Key and body.
type reportServer struct {
	mu     sync.Mutex
	keys   []string
	bodies []string
}

func newReportServer(t *testing.T, answer func(n int, w http.ResponseWriter)) (*reportServer, *apiclient.Client) {
	t.Helper()
	rs := &reportServer{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.ReportRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("request body: %v", err)
		}
		rs.mu.Lock()
		n := len(rs.keys)
		rs.keys = append(rs.keys, r.Header.Get("Idempotency-Key"))
		rs.bodies = append(rs.bodies, req.Text)
		rs.mu.Unlock()
		answer(n, w)
	}))
	t.Cleanup(hs.Close)
	c, err := apiclient.New(hs.URL, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	saved := *apiclient.ReportBackoff
	*apiclient.ReportBackoff = []time.Duration{0, 0}
	t.Cleanup(func() { *apiclient.ReportBackoff = saved })
	return rs, c
}

func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: "m"}})
}

// dropConnection answers nothing: the client sees the connection close,
// as after a timeout.
func dropConnection(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Error(err) // not Fatal: this is the server's goroutine
		return
	}
	conn.Close()
}

// TestReportRetriesUnderOneKey: a report that got a 503 and then no
// answer is sent again under the key of its first attempt, so the server
// can store it once; another report gets another key.
func TestReportRetriesUnderOneKey(t *testing.T) {
	rs, c := newReportServer(t, func(n int, w http.ResponseWriter) {
		switch n {
		case 0:
			writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable)
		case 1:
			dropConnection(t, w)
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(rollout.ReportResult{Report: rollout.Report{ID: 7}, Replayed: n == 2})
		}
	})
	res, err := c.Report(context.Background(), api.ReportRequest{Label: "img", Text: "boom"})
	if err != nil || res.Report.ID != 7 || !res.Replayed {
		t.Fatalf("Report: %+v, %v; want report 7, replayed", res, err)
	}
	if len(rs.keys) != 3 || rs.keys[0] != rs.keys[1] || rs.keys[1] != rs.keys[2] {
		t.Fatalf("Idempotency-Keys of the attempts: %q, want one key three times", rs.keys)
	}
	if err := rollout.CheckIdempotencyKey(rs.keys[0]); err != nil {
		t.Errorf("generated key: %v", err)
	}
	if _, err := c.Report(context.Background(), api.ReportRequest{Label: "img", Text: "boom"}); err != nil {
		t.Fatal(err)
	}
	if rs.keys[3] == rs.keys[0] {
		t.Errorf("a second report reused the first one's key %q", rs.keys[0])
	}
	if _, err := c.ReportWithKey(context.Background(), "ci-1234-report", api.ReportRequest{Label: "img", Text: "boom"}); err != nil {
		t.Fatal(err)
	}
	if rs.keys[4] != "ci-1234-report" {
		t.Errorf("ReportWithKey sent key %q, want the caller's", rs.keys[4])
	}
}

// TestReportRetryLimits: refusals are not retried (a reused key is
// ErrKeyReused, also a conflict); a server that keeps failing is tried
// len(backoff)+1 times and its error returned.
func TestReportRetryLimits(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		code     string
		kind     error
		attempts int
	}{
		{"key reused", http.StatusUnprocessableEntity, api.CodeKeyReused, rollout.ErrKeyReused, 1},
		{"invalid", http.StatusBadRequest, api.CodeInvalid, rollout.ErrInvalid, 1},
		{"forbidden", http.StatusForbidden, api.CodeForbidden, rollout.ErrForbidden, 1},
		{"internal", http.StatusInternalServerError, api.CodeInternal, nil, 3},
		{"throttled", http.StatusTooManyRequests, api.CodeRateLimited, api.ErrRateLimited, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, c := newReportServer(t, func(_ int, w http.ResponseWriter) { writeError(w, tt.status, tt.code) })
			_, err := c.Report(context.Background(), api.ReportRequest{Label: "img", Text: "boom"})
			var ae *apiclient.Error
			if !errors.As(err, &ae) || ae.Status != tt.status || (tt.kind != nil && !errors.Is(err, tt.kind)) {
				t.Fatalf("Report: %v, want HTTP %d (%v)", err, tt.status, tt.kind)
			}
			if diff := cmp.Diff(tt.attempts, len(rs.keys)); diff != "" {
				t.Errorf("attempts (-want +got):\n%s", diff)
			}
		})
	}
	_, c := newReportServer(t, func(_ int, w http.ResponseWriter) {
		writeError(w, http.StatusUnprocessableEntity, api.CodeKeyReused)
	})
	if _, err := c.Report(context.Background(), api.ReportRequest{Label: "img", Text: "x"}); !errors.Is(err, rollout.ErrConflict) {
		t.Errorf("a reused key: %v, want a conflict too", err)
	}
}
