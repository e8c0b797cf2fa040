package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/client"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
)

func newClient(t *testing.T, e *env, opts client.Options) *client.Client {
	t.Helper()
	opts.Server, opts.Token = e.URL, e.runner
	c, err := client.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The server may be down for good: give up delivering soon.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func TestResolveFallsBack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.release(t, "v1")
	c := newClient(t, e, client.Options{Labels: []string{label}, CacheTTL: time.Millisecond})

	// Answers of the server are errors, not fallbacks.
	if _, err := c.Resolve(ctx, "acme", "no-such-image", ""); !errors.Is(err, rollout.ErrNotFound) {
		t.Errorf("resolve of an unknown label: %v, want ErrNotFound", err)
	}
	got, err := c.Resolve(ctx, "acme", label, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(client.Resolution{Label: label, Version: "v1", Reason: "default", Ring: got.Ring, Detail: got.Detail}, got); d != "" {
		t.Errorf("resolve with the server up (-want +got):\n%s", d)
	}
	// A client that was told no labels at startup knows no default.
	bare := newClient(t, e, client.Options{CacheTTL: time.Millisecond})
	e.stop()
	time.Sleep(2 * time.Millisecond)
	if _, err := bare.Resolve(ctx, "globex", label, ""); err == nil {
		t.Errorf("resolve with the server down and nothing to fall back on: no error")
	}

	tests := []struct {
		org, label   string
		wantVersion  string
		wantFallback string
		wantErr      bool
	}{
		{"acme", label, "v1", client.FallbackLast, false},
		// Never asked about: the default fetched at startup.
		{"globex", label, "v1", client.FallbackDefault, false},
		{"globex", "other-image", "", "", true},
	}
	for _, tt := range tests {
		got, err := c.Resolve(ctx, tt.org, tt.label, "")
		if (err != nil) != tt.wantErr {
			t.Errorf("resolve %s for %s with the server down: error %v, want error %v", tt.label, tt.org, err, tt.wantErr)
			continue
		}
		if got.Version != tt.wantVersion || got.Fallback != tt.wantFallback {
			t.Errorf("resolve %s for %s with the server down = %s (fallback %q), want %s (fallback %q)",
				tt.label, tt.org, got.Version, got.Fallback, tt.wantVersion, tt.wantFallback)
		}
	}
}

func TestResolveCaches(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.release(t, "v1")
	c := newClient(t, e, client.Options{CacheTTL: time.Hour})
	if _, err := c.Resolve(ctx, "acme", label, "run-1"); err != nil {
		t.Fatal(err)
	}
	e.release(t, "v2")
	got, err := c.Resolve(ctx, "acme", label, "run-1")
	if err != nil || got.Version != "v1" || got.Fallback != "" {
		t.Errorf("resolve within CacheTTL = %+v, %v; want the cached v1", got, err)
	}
}

func event(i int, version string) client.JobEvent {
	outcome := client.OutcomeSucceeded
	if i%10 == 0 {
		outcome = client.OutcomeFailed
	}
	return client.JobEvent{JobID: jobID(i), Org: "acme", Label: label, Version: version, Pipeline: "acme/app/ci.yml",
		Outcome: outcome, StartedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), DurationMs: 60000}
}

func waitJobs(t *testing.T, e *env, version string, atLeast int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.jobs(t, version).Total < atLeast {
		if time.Now().After(deadline) {
			t.Fatalf("only %d jobs stored after 10s, want %d", e.jobs(t, version).Total, atLeast)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReportSurvivesTheServerStopping: the server stores a batch and dies
// before answering, then is down while more jobs finish; every event is
// stored once.
func TestReportSurvivesTheServerStopping(t *testing.T) {
	e := newEnv(t)
	e.release(t, "v1")
	e.dropAfterIngest = 2
	c := newClient(t, e, client.Options{BatchSize: 50, FlushInterval: 10 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx := context.Background()
	for i := range 200 {
		if err := c.Report(ctx, event(i, "v1")); err != nil {
			t.Fatal(err)
		}
	}
	waitJobs(t, e, "v1", 200)
	e.stop()
	for i := 200; i < 400; i++ {
		if err := c.Report(ctx, event(i, "v1")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // a few failed retries
	e.start(t)
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Close(closeCtx); err != nil {
		t.Fatalf("close: %v", err)
	}
	want := rollout.JobCounts{Total: 400, Succeeded: 360, Failed: 40}
	if d := cmp.Diff(want, e.jobs(t, "v1")); d != "" {
		t.Errorf("jobs stored (-want +got):\n%s", d)
	}
	if n := e.eventsRequests.Load(); n < 9 {
		t.Errorf("%d events requests, want at least 8 batches and a retry", n)
	}
	if err := c.Report(ctx, event(1000, "v1")); !errors.Is(err, client.ErrClosed) {
		t.Errorf("report after close: %v, want ErrClosed", err)
	}
}

// TestReportHonoursRetryAfter: a runner over its token's rate is refused
// with 429 and Retry-After: 1; the client waits that second instead of
// its millisecond backoff, so the server sees a refusal or so per batch,
// not the dozens a doubling backoff from 1ms would send, and every event
// arrives once.
func TestReportHonoursRetryAfter(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.RateLimits.Hot = server.RateLimit{Rate: 2, Burst: 1} })
	e.release(t, "v1")
	c := newClient(t, e, client.Options{BatchSize: 10, FlushInterval: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Second})
	for i := range 30 {
		if err := c.Report(context.Background(), event(i, "v1")); err != nil {
			t.Fatal(err)
		}
	}
	waitJobs(t, e, "v1", 30)
	if n := e.eventsRequests.Load(); n > 8 {
		t.Errorf("%d events requests for 3 batches under a rate limit, want at most 8: Retry-After was not honoured", n)
	}
	if got := e.jobs(t, "v1").Total; got != 30 {
		t.Errorf("%d jobs stored, want 30", got)
	}
}

// TestSpoolCarriesEventsAcrossRestarts: the server is down throughout a
// runner's life; what it could not deliver is sent by the next one.
func TestSpoolCarriesEventsAcrossRestarts(t *testing.T) {
	e := newEnv(t)
	e.release(t, "v1")
	e.stop()
	dir := t.TempDir()
	opts := client.Options{SpoolDir: dir, MaxPending: 10, FlushInterval: 10 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	c := newClient(t, e, opts)
	ctx := context.Background()
	for i := range 25 {
		if err := c.Report(ctx, event(i, "v1")); err != nil {
			t.Fatal(err)
		}
	}
	closeCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := c.Close(closeCtx)
	if err == nil || !strings.Contains(err.Error(), "25 events not delivered, kept in") {
		t.Errorf("close with the server down: %v, want 25 events kept", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 25 {
		t.Errorf("spool holds %d events, want 25", n)
	}

	e.start(t)
	c2 := newClient(t, e, opts)
	waitJobs(t, e, "v1", 25)
	if err := c2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(rollout.JobCounts{Total: 25, Succeeded: 22, Failed: 3}, e.jobs(t, "v1")); d != "" {
		t.Errorf("jobs stored (-want +got):\n%s", d)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "events.jsonl")); err != nil || len(b) != 0 {
		t.Errorf("spool after delivery: %q, %v; want empty", b, err)
	}
}

// eventSize is how many bytes an event takes in the spool (a JSON line).
func eventSize(t *testing.T) int64 {
	b, err := json.Marshal(event(1, "v1")) // a succeeded one, as the spooled ones are
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b) + 1)
}

func TestBacklogIsBounded(t *testing.T) {
	e := newEnv(t)
	e.stop()
	tests := []struct {
		name string
		opts client.Options
		fits int
	}{
		{"memory only", client.Options{MaxPending: 3}, 3},
		// Room for two events in the spool.
		{"memory and spool", client.Options{MaxPending: 2, SpoolDir: t.TempDir(), MaxSpoolBytes: 2*eventSize(t) + 1}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.FlushInterval = time.Hour
			c := newClient(t, e, tt.opts)
			for i := range tt.fits {
				if err := c.Report(context.Background(), event(i, "v1")); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
			}
			if err := c.Report(context.Background(), event(tt.fits, "v1")); !errors.Is(err, client.ErrBacklogFull) {
				t.Errorf("event %d: %v, want ErrBacklogFull", tt.fits, err)
			}
		})
	}
}
