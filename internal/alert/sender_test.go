package alert_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

func TestBackoff(t *testing.T) {
	const lo, hi = time.Second, 10 * time.Minute
	tests := []struct {
		attempt int
		u       float64
		want    time.Duration
	}{
		{1, 0, time.Second},     // d=1s, d/2 clamped up to the minimum
		{1, 0.999, time.Second}, // d=1s: never above d
		{2, 0, time.Second},     // d=2s: [1s, 2s)
		{2, 0.5, 1500 * time.Millisecond},
		{3, 0, 2 * time.Second},    // d=4s: [2s, 4s)
		{4, 0.5, 6 * time.Second},  // d=8s
		{10, 0, 256 * time.Second}, // d=512s
		{11, 0, 5 * time.Minute},   // d=1024s capped at 10min: [5min, 10min)
		{11, 0.5, 450 * time.Second},
		{40, 0.999, hi - 300*time.Millisecond},
		{1000, 0, 5 * time.Minute}, // no overflow
		{0, 0, time.Second},        // treated as the first attempt
	}
	for _, tc := range tests {
		got := alert.Backoff(tc.attempt, lo, hi, tc.u)
		if got != tc.want {
			t.Errorf("Backoff(%d, u=%v) = %v, want %v", tc.attempt, tc.u, got, tc.want)
		}
		if got < lo || got > hi {
			t.Errorf("Backoff(%d, u=%v) = %v outside [%v, %v]", tc.attempt, tc.u, got, lo, hi)
		}
	}
}

func TestTargetValidate(t *testing.T) {
	tests := []struct {
		target alert.Target
		ok     bool
	}{
		{alert.Target{URL: "https://hooks.slack.com/services/T/B/X", Format: "slack"}, true},
		{alert.Target{URL: "http://127.0.0.1:8080/hook", Format: "teams"}, true},
		{alert.Target{URL: "https://example.com/hook"}, true}, // json by default
		{alert.Target{URL: "ftp://example.com/hook", Format: "json"}, false},
		{alert.Target{URL: "/relative/hook", Format: "json"}, false},
		{alert.Target{URL: "https:///nohost", Format: "json"}, false},
		{alert.Target{URL: "https://example.com/hook", Format: "xml"}, false},
		{alert.Target{URL: "::", Format: "json"}, false},
	}
	for _, tc := range tests {
		err := tc.target.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.target, err, tc.ok)
		}
		if err != nil && !errors.Is(err, rollout.ErrInvalid) {
			t.Errorf("%+v.Validate() = %v, want ErrInvalid", tc.target, err)
		}
		if err != nil && strings.Contains(err.Error(), "/services/") {
			t.Errorf("error reveals the URL's path: %v", err)
		}
	}
	a := alert.Target{URL: "https://hooks.slack.com/services/T/B/SECRET", Format: "slack"}
	if r := a.Redacted(); r != "https://hooks.slack.com/…" {
		t.Errorf("Redacted = %q", r)
	}
	if strings.Contains(a.ID(), "SECRET") || a.ID() == (alert.Target{URL: a.URL, Format: "json"}).ID() {
		t.Errorf("ID %q must hide the URL and differ per format", a.ID())
	}
	if _, err := alert.NewOutbox(tempSQLite(t), []alert.Target{a, a}, nil); !errors.Is(err, rollout.ErrInvalid) {
		t.Errorf("NewOutbox with a target listed twice: %v, want ErrInvalid", err)
	}
	if _, err := alert.NewSender(tempSQLite(t), alert.SenderOptions{Holder: "h", Timeout: time.Second, LeaseFor: time.Second}); !errors.Is(err, rollout.ErrInvalid) {
		t.Errorf("NewSender with a lease shorter than two timeouts: %v, want ErrInvalid", err)
	}
}

// TestIdempotentAlert: the same decision raised again (a controller that
// crashed after enqueueing and decides again) queues and sends nothing new.
func TestIdempotentAlert(t *testing.T) {
	slackRcv, jsonRcv := newReceiver(t, nil), newReceiver(t, nil)
	st := tempSQLite(t)
	clock := testenv.NewClock(t0)
	targets := []alert.Target{{URL: slackRcv.URL, Format: "slack"}, {URL: jsonRcv.URL, Format: "json"}}
	o := mustOutbox(t, st, targets, clock)
	a := sqliteAlert(rollout.AlertID("r-7", 4))
	for range 3 {
		if err := o.Alert(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	items, _, err := st.ListOutbox(t.Context(), rollout.OutboxFilter{KeyPrefix: "rollout/r-7/rev/4/"}, rollout.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	want := []string{alert.Key(a.ID, targets[1]), alert.Key(a.ID, targets[0])}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Fatalf("outbox keys after three Alerts of one decision (-want +got):\n%s", diff)
	}
	s := mustSender(t, st, alert.SenderOptions{Holder: "a", Clock: clock})
	if _, err := s.Deliver(t.Context()); err != nil {
		t.Fatal(err)
	}
	// After delivery, once more: still nothing new.
	if err := o.Alert(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if n, err := s.Deliver(t.Context()); err != nil || n != 0 {
		t.Errorf("Deliver after a repeated, delivered alert = %d, %v; want nothing to send", n, err)
	}
	for name, r := range map[string]*receiver{"slack": slackRcv, "json": jsonRcv} {
		if req, got := r.count(); req != 1 || got != 1 {
			t.Errorf("%s receiver: %d requests, %d received; want exactly 1", name, req, got)
		}
	}
	// A later decision on the same rollout is a new alert.
	if err := o.Alert(t.Context(), sqliteAlert(rollout.AlertID("r-7", 5))); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Deliver(t.Context()); err != nil || n != 2 {
		t.Errorf("Deliver of the next decision = %d, %v; want 2 (one per target)", n, err)
	}
}

// TestReceiverDown: a receiver that answers 500 (then 503 with
// Retry-After) gets the alert once it recovers, exactly once, after
// backed-off retries; nothing is attempted before the backoff elapses.
func TestReceiverDown(t *testing.T) {
	rcv := newReceiverWrapped(t, func(n int) int {
		switch {
		case n <= 3:
			return http.StatusInternalServerError
		case n == 4:
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	}, func(inner http.Handler) http.Handler {
		// Retry-After on every answer; the sender heeds it on the 503 only.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			inner.ServeHTTP(w, r)
		})
	})
	st := tempSQLite(t)
	clock := testenv.NewClock(t0)
	target := alert.Target{URL: rcv.URL, Format: "json"}
	if err := mustOutbox(t, st, []alert.Target{target}, clock).Alert(t.Context(), sqliteAlert("rollout/r-7/rev/4")); err != nil {
		t.Fatal(err)
	}
	s := mustSender(t, st, alert.SenderOptions{Holder: "a", Clock: clock, Jitter: func() float64 { return 0 }})

	// Attempt n fails, so attempt n+1 waits Backoff(n) with u=0: 1s, 1s,
	// 2s, then the 503's Retry-After of 120s.
	waits := []time.Duration{time.Second, time.Second, 2 * time.Second, 120 * time.Second}
	for i, wait := range waits {
		if n, err := s.Deliver(t.Context()); err != nil || n != 1 {
			t.Fatalf("attempt %d: Deliver = %d, %v; want one item tried", i+1, n, err)
		}
		items, _, err := st.ListOutbox(t.Context(), rollout.OutboxFilter{}, rollout.Page{})
		if err != nil {
			t.Fatal(err)
		}
		it := items[0]
		if it.Delivered() || it.Attempts != i+1 || !it.NextAttemptAt.Equal(clock.Now().Add(wait)) || !strings.Contains(it.LastError, "50") {
			t.Fatalf("after failed attempt %d: %+v; want undelivered, %d attempts, next at now+%v, the status in the error", i+1, it, i+1, wait)
		}
		if strings.Contains(it.LastError, rcv.Listener.Addr().String()+"/") {
			t.Errorf("recorded error holds the URL: %q", it.LastError)
		}
		clock.Advance(wait - time.Millisecond)
		if n, err := s.Deliver(t.Context()); err != nil || n != 0 {
			t.Fatalf("Deliver before the backoff elapsed = %d, %v; want nothing due", n, err)
		}
		clock.Advance(time.Millisecond)
	}
	if n, err := s.Deliver(t.Context()); err != nil || n != 1 {
		t.Fatalf("Deliver after recovery = %d, %v", n, err)
	}
	clock.Advance(time.Hour)
	if n, err := s.Deliver(t.Context()); err != nil || n != 0 {
		t.Fatalf("Deliver after the ack = %d, %v; want nothing", n, err)
	}
	if req, got := rcv.count(); req != 5 || got != 1 {
		t.Errorf("receiver: %d requests, %d received; want 5 requests, the alert exactly once", req, got)
	}
}

// TestRestartLosesNothing: a replica dies with alerts queued, one of them
// mid-POST, another claimed but never sent (kill -9 after Claim); a new
// process on the same SQLite file delivers every one, each exactly once.
func TestRestartLosesNothing(t *testing.T) {
	path := t.TempDir() + "/imagegate.db"
	release := make(chan struct{})
	var hung sync.Once
	hanging := make(chan struct{})
	down := true
	var mu sync.Mutex
	rcv := newReceiverWrapped(t, nil, func(inner http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			d := down
			mu.Unlock()
			if d {
				// The first process's POSTs never get an answer.
				hung.Do(func() { close(hanging) })
				select {
				case <-release:
				case <-r.Context().Done():
				}
				http.Error(w, "gone", http.StatusBadGateway)
				return
			}
			inner.ServeHTTP(w, r)
		})
	})
	defer close(release)

	target := alert.Target{URL: rcv.URL + "/hook", Format: "json"}
	const n = 5
	{
		st, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		o := mustOutbox(t, st, []alert.Target{target}, nil)
		for i := range n {
			if err := o.Alert(t.Context(), sqliteAlert(rollout.AlertID("r-7", int64(i+1)))); err != nil {
				t.Fatal(err)
			}
		}
		// A process that claimed one item and died before sending it.
		if got, err := st.Claim(t.Context(), "dead", time.Now(), 300*time.Millisecond, 1); err != nil || len(got) != 1 {
			t.Fatalf("Claim by the doomed holder = %v, %v", got, err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		s := mustSender(t, st, alert.SenderOptions{Holder: "first", Timeout: 5 * time.Second, Interval: 10 * time.Millisecond})
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		<-hanging
		cancel() // shutdown mid-POST
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, got := rcv.count(); got != 0 {
		t.Fatalf("receiver got %d alerts while down", got)
	}
	mu.Lock()
	down = false
	mu.Unlock()

	st := openSQLite(t, path)
	s := mustSender(t, st, alert.SenderOptions{Holder: "second", Timeout: 100 * time.Millisecond, Interval: 10 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, 10*time.Second, "every alert delivered after the restart", func() bool { _, got := rcv.count(); return got >= n })
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive now
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range rcv.received() {
		seen[r.Key]++
	}
	want := map[string]int{}
	for i := range n {
		want[alert.Key(rollout.AlertID("r-7", int64(i+1)), target)] = 1
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("alerts received by key (-want +got):\n%s", diff)
	}
	items, _, err := st.ListOutbox(t.Context(), rollout.OutboxFilter{Undelivered: true}, rollout.Page{})
	if err != nil || len(items) != 0 {
		t.Errorf("undelivered after the restart: %v, %v", items, err)
	}
}

// TestTwoReplicasPostgres: two Senders on two connections to one
// PostgreSQL database, a flaky receiver: every alert arrives exactly once.
func TestTwoReplicasPostgres(t *testing.T) {
	dsn := postgresSchema(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	var mu sync.Mutex
	calls := 0
	rcv := newReceiver(t, func(int) int {
		// Slow enough that the other replica's passes run while a POST
		// is in flight.
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%4 == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	targets := []alert.Target{{URL: rcv.URL + "/json", Format: "json"}, {URL: rcv.URL + "/slack", Format: "slack"}}
	const decisions = 40
	// Both replicas raise every decision (each controller thinks it
	// decided): the outbox keeps one item per target.
	for _, st := range []rollout.OutboxStore{a, b} {
		o := mustOutbox(t, st, targets, nil)
		for i := range decisions {
			if err := o.Alert(t.Context(), sqliteAlert(rollout.AlertID(fmt.Sprint("r-", i), 1))); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i, st := range []rollout.OutboxStore{a, b} {
		s := mustSender(t, st, alert.SenderOptions{Holder: fmt.Sprint("replica-", i), Batch: 3, Timeout: time.Second,
			Interval: 5 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
		wg.Go(func() {
			if err := s.Run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	want := decisions * len(targets)
	waitFor(t, 30*time.Second, "every alert delivered", func() bool { _, got := rcv.count(); return got >= want })
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive now
	cancel()
	wg.Wait()
	seen := map[string]int{}
	for _, r := range rcv.received() {
		seen[r.Key]++
	}
	if len(seen) != want {
		t.Errorf("%d distinct alerts received, want %d", len(seen), want)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("alert %s received %d times, want once", k, c)
		}
	}
	if req, _ := rcv.count(); req <= want {
		t.Errorf("%d requests for %d alerts: the flaky receiver should have forced retries", req, want)
	}
}
