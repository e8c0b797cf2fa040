package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

func TestPins(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{PinExpiryWarning: 24 * time.Hour})
	o := orgs(t)
	e.setup(label, []rollout.Ring{{Name: "all", Percent: 100}})
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	e.tickTo(r.ID, rollout.StateCompleted, 0)
	e.expect(label, map[string]string{o.r1: "v2", o.r2: "v2"})

	pin := rollout.Pin{Org: o.r1, Label: label, Version: "v1", Reason: "our builds break on v2", ExpiresAt: t0.Add(48 * time.Hour)}
	got, err := e.svc.SetPin(e.ctx, "token:org-"+o.r1, pin)
	e.must(err)
	if got.Owner != "token:org-"+o.r1 || got.CreatedBy != got.Owner {
		t.Errorf("pin owner %q created by %q, want the actor", got.Owner, got.CreatedBy)
	}
	res := e.resolve(o.r1, label, "run-9")
	if res.Version != "v1" || res.Reason != "pin" || !strings.Contains(res.Detail, "our builds break on v2") {
		t.Errorf("pinned resolve = %+v", res)
	}
	e.expect(label, map[string]string{o.r2: "v2"})

	views, _, err := e.svc.ListPins(e.ctx, o.r1, "", rollout.Page{})
	e.must(err)
	if len(views) != 1 || views[0].Expired || views[0].ExpiresSoon {
		t.Errorf("pins 48h before expiry: %+v", views)
	}
	e.clock.Advance(30 * time.Hour)
	views, _, err = e.svc.ListPins(e.ctx, "", label, rollout.Page{})
	e.must(err)
	if len(views) != 1 || !views[0].ExpiresSoon {
		t.Errorf("pins 18h before expiry: %+v, want expiresSoon", views)
	}
	e.clock.Advance(18 * time.Hour)
	// Expired: stops applying by itself, still listed and flagged.
	e.expect(label, map[string]string{o.r1: "v2"})
	views, _, err = e.svc.ListPins(e.ctx, o.r1, label, rollout.Page{})
	e.must(err)
	if len(views) != 1 || !views[0].Expired {
		t.Errorf("pins after expiry: %+v, want expired", views)
	}
	e.must(e.svc.ClearPin(e.ctx, admin, o.r1, label))
	wantErr(t, e.svc.ClearPin(e.ctx, admin, o.r1, label), rollout.ErrNotFound)

	for _, tc := range []struct {
		name string
		pin  rollout.Pin
		err  error
	}{
		{"past expiry", rollout.Pin{Org: o.r2, Label: label, Version: "v1", Reason: "x", ExpiresAt: t0}, rollout.ErrInvalid},
		{"no expiry", rollout.Pin{Org: o.r2, Label: label, Version: "v1", Reason: "x"}, rollout.ErrInvalid},
		{"no reason", rollout.Pin{Org: o.r2, Label: label, Version: "v1", ExpiresAt: e.clock.Now().Add(time.Hour)}, rollout.ErrInvalid},
		{"unknown version", rollout.Pin{Org: o.r2, Label: label, Version: "v7", Reason: "x", ExpiresAt: e.clock.Now().Add(time.Hour)}, rollout.ErrNotFound},
	} {
		_, err := e.svc.SetPin(e.ctx, admin, tc.pin)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: SetPin = %v, want %v", tc.name, err, tc.err)
		}
	}

	// Revoked versions: refused, or overridden with a visible reason.
	e.must(e.svc.RevokeVersion(e.ctx, admin, label, "v1", "CVE-2026-0001 in openssl"))
	pin = rollout.Pin{Org: o.r2, Label: label, Version: "v1", Reason: "need the old toolchain one more day", ExpiresAt: e.clock.Now().Add(24 * time.Hour)}
	_, err = e.svc.SetPin(e.ctx, admin, pin)
	wantErr(t, err, rollout.ErrPrecondition)
	pin.OverrideRevoked = true
	_, err = e.svc.SetPin(e.ctx, admin, pin)
	e.must(err)
	res = e.resolve(o.r2, label, "")
	if res.Version != "v1" || !strings.Contains(res.Detail, "REVOKED") || !strings.Contains(res.Detail, "CVE-2026-0001") {
		t.Errorf("resolve with a pin overriding revocation = %+v", res)
	}
}

func TestRunAffinity(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	o := orgs(t)
	e.setup(label, threeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	// A run of an org in ring 2 starts on v1 ...
	if res := e.resolve(o.r2, label, "run-old"); res.Version != "v1" {
		t.Fatalf("run-old got %s", res.Version)
	}
	// ... and keeps it while the rollout reaches its ring and completes.
	for ring := range 3 {
		e.clock.Advance(5 * time.Hour)
		e.jobsDone(label, "v2", ring, 3, 0)
		if ring < 2 {
			e.tickTo(r.ID, rollout.StateBaking, ring+1)
		} else {
			e.tickTo(r.ID, rollout.StateCompleted, 2)
		}
		// Reason says affinity once the rollout alone would give v2.
		res := e.resolve(o.r2, label, "run-old")
		if res.Version != "v1" || (ring >= 1 && res.Reason != "affinity") {
			t.Fatalf("run-old after ring %d: %s (%s), want v1 by affinity", ring, res.Version, res.Reason)
		}
	}
	if res := e.resolve(o.r2, label, "run-new"); res.Version != "v2" {
		t.Errorf("a new run got %s, want v2", res.Version)
	}
	// Affinity is kept across replicas: the store has the run.
	other, err := rollout.NewService(e.ctx, e.db, rollout.ServiceOptions{Clock: e.clock})
	e.must(err)
	defer other.Close()
	if res, err := other.Resolve(e.ctx, o.r2, label, "run-old"); err != nil || res.Version != "v1" {
		t.Errorf("run-old on another replica: %+v %v, want v1", res, err)
	}

	// Rollback breaks affinity.
	e.push(label, "v3", "pass")
	r3 := e.start(rollout.StartRequest{Label: label, Version: "v3"})
	e.tickTo(r3.ID, rollout.StateBaking, 0)
	if res := e.resolve(o.r0, label, "run-3"); res.Version != "v3" {
		t.Fatalf("run-3 got %s", res.Version)
	}
	_, err = e.svc.Rollback(e.ctx, admin, r3.ID, "bad")
	e.must(err)
	if res := e.resolve(o.r0, label, "run-3"); res.Version != "v2" {
		t.Errorf("run-3 after rollback: %s (%s), want v2", res.Version, res.Reason)
	}
	// The other replica, with run-3 unknown to it before, agrees once it
	// has seen the rollback.
	waitFor(t, func() bool {
		res, err := other.Resolve(e.ctx, o.r0, label, "run-3")
		return err == nil && res.Version == "v2"
	})

	// Revocation breaks affinity too.
	if res := e.resolve(o.r2, label, "run-4"); res.Version != "v2" {
		t.Fatalf("run-4 got %s", res.Version)
	}
	e.push(label, "v4", "pass")
	r4 := e.start(rollout.StartRequest{Label: label, Version: "v4"})
	for ring := range 3 {
		e.tickTo(r4.ID, rollout.StateBaking, ring)
		e.clock.Advance(5 * time.Hour)
		e.jobsDone(label, "v4", ring, 3, 0)
	}
	e.tickTo(r4.ID, rollout.StateCompleted, 2)
	if res := e.resolve(o.r2, label, "run-4"); res.Version != "v2" {
		t.Fatalf("run-4 after v4 completed: %s, want v2 by affinity", res.Version)
	}
	e.must(e.svc.RevokeVersion(e.ctx, admin, label, "v2", "leaks tokens"))
	if res := e.resolve(o.r2, label, "run-4"); res.Version != "v4" {
		t.Errorf("run-4 after v2 was revoked: %s (%s), want v4", res.Version, res.Reason)
	}
}

// waitFor polls cond for a while; for effects on other replicas, which
// refresh on their own schedule.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRevokeRollsBackActive(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	o := orgs(t)
	e.setup(label, threeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	wantErr(t, e.svc.RevokeVersion(e.ctx, admin, label, "v2", ""), rollout.ErrInvalid)
	wantErr(t, e.svc.RevokeVersion(e.ctx, admin, label, "v9", "x"), rollout.ErrNotFound)
	e.must(e.svc.RevokeVersion(e.ctx, admin, label, "v2", "CVE"))
	if got := e.get(r.ID); got.State != rollout.StateRolledBack {
		t.Errorf("rollout of a revoked version is %s, want rolled-back", got.State)
	}
	e.expect(label, map[string]string{o.r0: "v1"})
	_, err := e.svc.StartRollout(e.ctx, admin, rollout.StartRequest{Label: label, Version: "v2"})
	wantErr(t, err, rollout.ErrPrecondition)
}

// TestConcurrentResolves resolves from many goroutines while the
// controller moves a rollout through its rings: every answer is the old or
// the new version as the state allows, never an error.
func TestConcurrentResolves(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	rings := threeRings()
	e.setup(label, rings)
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})

	// published is the ring the rollout has certainly reached (3 =
	// completed); Tick returns only after this replica's routing table
	// has the change.
	var published atomic.Int64
	published.Store(-1)
	// reaching is the ring a Tick under way may publish: a resolve can see
	// it before Tick returns and published catches up.
	var reaching atomic.Int64
	reaching.Store(-1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failures atomic.Int64
	var resolves atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				org := fmt.Sprintf("org-%d", rnd.IntN(5000))
				if rnd.IntN(20) == 0 {
					org = "org-internal"
				}
				ring := rollout.RingOf(rings, org)
				run := ""
				if rnd.IntN(2) == 0 {
					run = fmt.Sprintf("run-%d", rnd.IntN(300))
				}
				before := int(published.Load())
				res, err := e.svc.Resolve(context.Background(), org, label, run)
				after := int(reaching.Load())
				resolves.Add(1)
				bad := ""
				switch {
				case err != nil:
					bad = err.Error()
				case res.Version != "v1" && res.Version != "v2":
					bad = "unknown version"
				case run != "":
					// Affinity may hold either version.
				case ring < before || before == 3:
					if res.Version != "v2" {
						bad = "ring reached but old version"
					}
				case ring > after:
					if res.Version != "v1" {
						bad = "ring not reached but new version"
					}
				}
				if bad != "" && failures.Add(1) < 5 {
					t.Errorf("resolve %s (ring %d, run %q) with rollout between ring %d and %d: %+v: %s", org, ring, run, before, after, res, bad)
				}
			}
		})
	}
	reaching.Store(0)
	e.must(e.ctl.Tick(e.ctx))
	published.Store(0)
	for ring := range 3 {
		time.Sleep(20 * time.Millisecond)
		e.clock.Advance(5 * time.Hour)
		e.jobsDone(label, "v2", ring, 3, 0)
		reaching.Store(int64(ring + 1))
		e.must(e.ctl.Tick(e.ctx))
		published.Store(int64(ring + 1))
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if got := e.get(r.ID); got.State != rollout.StateCompleted {
		t.Errorf("rollout ended %s", got.State)
	}
	if resolves.Load() < 100 {
		t.Errorf("only %d resolves ran", resolves.Load())
	}
}

// TestControllerCrashResumes stops the process between decisions and
// starts another controller (another holder) over the same database.
func TestControllerCrashResumes(t *testing.T) {
	opts := rollout.ServiceOptions{}
	e := newEnv(t, opts)
	o := orgs(t)
	e.setup(label, threeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	e.clock.Advance(time.Hour)
	e.jobsDone(label, "v2", 0, 3, 0)
	e.crash(opts, "replica-b")
	e.expect(label, map[string]string{o.r0: "v2", o.r1: "v1"})
	e.tickTo(r.ID, rollout.StateBaking, 1)
	e.crash(opts, "replica-c")
	e.tickTo(r.ID, rollout.StateBaking, 1) // bake time of ring 1 still counts from its start
	e.clock.Advance(2 * time.Hour)
	e.jobsDone(label, "v2", 1, 3, 0)
	e.tickTo(r.ID, rollout.StateBaking, 2)
	// Two controllers deciding the same step at once (a leader that lost
	// its lease while deciding): exactly one transition is written.
	e.clock.Advance(4 * time.Hour)
	e.jobsDone(label, "v2", 2, 3, 0)
	second := rollout.NewController(e.svc, e.db, rollout.ControllerOptions{Holder: "replica-d", Clock: e.clock})
	var wg sync.WaitGroup
	for _, c := range []*rollout.Controller{e.ctl, second} {
		wg.Go(func() { e.must(c.Tick(e.ctx)) })
	}
	wg.Wait()
	e.tickTo(r.ID, rollout.StateCompleted, 2)
	entries, _, err := e.svc.Audit(e.ctx, rollout.AuditFilter{Action: "rollout.complete"}, rollout.Page{})
	e.must(err)
	if len(entries) != 1 {
		t.Errorf("%d rollout.complete audit entries, want 1", len(entries))
	}
}

// TestControllerLease runs two controllers: one leads, and the other takes
// over when the first stops.
func TestControllerLease(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	b := rollout.NewController(e.svc, e.db, rollout.ControllerOptions{Holder: "replica-b", Clock: e.clock, Interval: 10 * time.Millisecond})
	a := rollout.NewController(e.svc, e.db, rollout.ControllerOptions{Holder: "replica-a", Clock: e.clock, Interval: 10 * time.Millisecond})
	actx, stopA := context.WithCancel(e.ctx)
	bctx, stopB := context.WithCancel(e.ctx)
	defer stopB()
	done := make(chan error, 2)
	go func() { done <- a.Run(actx) }()
	waitFor(t, a.IsLeader)
	go func() { done <- b.Run(bctx) }()
	waitFor(t, func() bool { return b.Ticks() == 0 && !b.IsLeader() })
	time.Sleep(50 * time.Millisecond)
	if b.IsLeader() || b.Ticks() != 0 {
		t.Fatalf("two leaders")
	}
	stopA()
	e.must(<-done)
	waitFor(t, b.IsLeader)
	if b.Fence() <= a.Fence() {
		t.Errorf("fence %d after takeover, not above %d", b.Fence(), a.Fence())
	}
	stopB()
	e.must(<-done)
}

func TestIngestEventsValidation(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	e.push(label, "v1", "pass")
	ok := rollout.JobEvent{JobID: "j1", Org: "o", Label: label, Version: "v1", Ring: 0, Outcome: rollout.OutcomeFailed, StartedAt: t0, DurationMs: 5}
	for _, tc := range []struct {
		name string
		mod  func(*rollout.JobEvent)
	}{
		{"no job id", func(ev *rollout.JobEvent) { ev.JobID = "" }},
		{"no org", func(ev *rollout.JobEvent) { ev.Org = "" }},
		{"bad outcome", func(ev *rollout.JobEvent) { ev.Outcome = "exploded" }},
		{"no start", func(ev *rollout.JobEvent) { ev.StartedAt = time.Time{} }},
		{"negative duration", func(ev *rollout.JobEvent) { ev.DurationMs = -1 }},
		{"bad ring", func(ev *rollout.JobEvent) { ev.Ring = -2 }},
	} {
		ev := ok
		tc.mod(&ev)
		if _, err := e.svc.IngestEvents(e.ctx, []rollout.JobEvent{ok, ev}); !errors.Is(err, rollout.ErrInvalid) || !strings.Contains(err.Error(), "event 1") {
			t.Errorf("%s: IngestEvents = %v, want ErrInvalid naming event 1", tc.name, err)
		}
	}
	// Idempotent on jobId.
	for want := range []int{1, 0} {
		n, err := e.svc.IngestEvents(e.ctx, []rollout.JobEvent{ok})
		e.must(err)
		if n != 1-want {
			t.Errorf("IngestEvents stored %d, want %d", n, 1-want)
		}
	}
}

func FuzzGateOf(f *testing.F) {
	for _, s := range []string{``, `{"verdict":"pass"}`, `{"verdict":"fail","summary":{"failed":1}}`, `{"summary":{"failed":0}}`, `{"failed":true}`, `[]`, `{"verdict":3}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, report []byte) {
		gate, err := rollout.GateOf(report)
		if err != nil {
			if !errors.Is(err, rollout.ErrInvalid) {
				t.Fatalf("GateOf error %v is not ErrInvalid", err)
			}
			return
		}
		switch gate {
		case rollout.GatePass, rollout.GateFail, rollout.GateUnknown:
		default:
			t.Fatalf("GateOf = %q", gate)
		}
		if gate == rollout.GatePass && len(report) > 0 {
			var m map[string]any
			if json.Unmarshal(report, &m) != nil {
				t.Fatalf("pass from a report that is not a JSON object: %q", report)
			}
		}
	})
}

func BenchmarkResolve(b *testing.B) {
	b.Run("no run", func(b *testing.B) { benchResolve(b, 0) })
	// 1000 runs, each assigned once in the store, then served from memory.
	b.Run("runs", func(b *testing.B) { benchResolve(b, 1000) })
}

func benchResolve(b *testing.B, runs int) {
	e := newEnv(b, rollout.ServiceOptions{})
	e.setup(label, threeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.must(e.ctl.Tick(e.ctx))
	e.clock.Advance(time.Hour)
	e.jobsDone(label, "v2", 0, 3, 0)
	e.must(e.ctl.Tick(e.ctx))
	if e.get(r.ID).Ring != 1 {
		b.Fatal("rollout not in ring 1")
	}
	orgs := make([]string, 1024)
	runIDs := make([]string, 1024)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("org-%d", i)
		if runs > 0 {
			runIDs[i] = fmt.Sprintf("run-%d", i%runs)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.svc.Resolve(context.Background(), orgs[i%len(orgs)], label, runIDs[i%len(runIDs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
