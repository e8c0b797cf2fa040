package rollout_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/rollout"
)

const label = "ubuntu-22.04"

// orgs of each ring of threeRings, found by hash.
type orgsOf struct{ r0, r1, r1c, r2 string }

func orgs(t testing.TB) orgsOf {
	rings := threeRings()
	return orgsOf{"org-internal", orgIn(t, rings, 1, false), orgIn(t, rings, 1, true), orgIn(t, rings, 2, false)}
}

func TestFullRollout(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	o := orgs(t)
	e.setup(label, threeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	if r.State != rollout.StatePending || r.FromVersion != "v1" {
		t.Fatalf("started rollout %+v, want pending from v1", r)
	}
	all := func(v0, v1, v1c, v2 string) map[string]string {
		return map[string]string{o.r0: v0, o.r1: v1, o.r1c: v1c, o.r2: v2}
	}
	e.expect(label, all("v1", "v1", "v1", "v1"))

	e.tickTo(r.ID, rollout.StateBaking, 0)
	e.expect(label, all("v2", "v1", "v1", "v1"))
	e.clock.Advance(59 * time.Minute)
	e.jobsDone(label, "v2", 0, 3, 0)
	e.tickTo(r.ID, rollout.StateBaking, 0) // bake time not over
	e.clock.Advance(time.Minute)
	e.jobsDone(label, "v1", 0, 5, 0) // jobs of the old version do not count
	e.tickTo(r.ID, rollout.StateBaking, 1)
	// Ring 1: its control share stays on v1 while it bakes.
	e.expect(label, all("v2", "v2", "v1", "v1"))
	e.clock.Advance(2 * time.Hour)
	e.jobsDone(label, "v2", 0, 5, 0) // jobs of another ring do not count
	e.tickTo(r.ID, rollout.StateBaking, 1)
	e.jobsDone(label, "v2", 1, 2, 0)
	e.tickTo(r.ID, rollout.StateBaking, 1)
	e.jobsDone(label, "v2", 1, 1, 0)
	e.tickTo(r.ID, rollout.StateBaking, 2)
	e.expect(label, all("v2", "v2", "v2", "v2"))

	st, err := e.svc.Status(e.ctx, label)
	e.must(err)
	if st.Waiting == "" || st.Rollout == nil || st.Rollout.ID != r.ID {
		t.Errorf("status while baking ring 2: %+v", st)
	}
	e.clock.Advance(4 * time.Hour)
	e.jobsDone(label, "v2", 2, 3, 0)
	done := e.tickTo(r.ID, rollout.StateCompleted, 2)
	e.expect(label, all("v2", "v2", "v2", "v2"))
	// Completed: the ticks after change nothing.
	e.tickTo(r.ID, rollout.StateCompleted, 2)

	// Observed status: nothing but v2 since completion, once the minute
	// of completion is behind us.
	e.clock.Advance(3 * time.Minute)
	e.expect(label, all("v2", "v2", "v2", "v2"))
	st, err = e.svc.Status(e.ctx, label)
	e.must(err)
	if !st.FullyServed || st.OldServed != 0 || st.Default != "v2" {
		t.Errorf("status after completion: fullyServed %v oldServed %d default %s, want fully served v2", st.FullyServed, st.OldServed, st.Default)
	}
	var intended []string
	served := map[string]int64{}
	for _, rs := range st.Rings {
		intended = append(intended, rs.Intended)
		for v, n := range rs.Served {
			served[v] += n
		}
	}
	if d := cmp.Diff([]string{"v2", "v2", "v2"}, intended); d != "" {
		t.Errorf("intended per ring (-want +got):\n%s", d)
	}
	if served["v1"] == 0 || served["v2"] == 0 {
		t.Errorf("served since the rollout started: %v, want both versions counted", served)
	}

	// The audit log tells the whole story, controller steps included.
	entries, _, err := e.svc.Audit(e.ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + r.ID}, rollout.Page{})
	e.must(err)
	var actions []string
	for _, a := range slices.Backward(entries) {
		actions = append(actions, a.Action)
		if a.Actor == "" || a.At.IsZero() {
			t.Errorf("audit entry without actor or time: %+v", a)
		}
	}
	want := []string{"rollout.start", "rollout.ring", "rollout.ring", "rollout.ring", "rollout.complete"}
	if d := cmp.Diff(want, actions); d != "" {
		t.Errorf("audit actions (-want +got):\n%s", d)
	}
	if done.UpdatedAt != t0.Add(7*time.Hour) {
		t.Errorf("completed at %v", done.UpdatedAt)
	}
}

func TestFirstRolloutAndGate(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	e.push("other", "v1", "pass")
	_, err := e.svc.StartRollout(e.ctx, admin, rollout.StartRequest{Label: "other", Version: "v1"})
	wantErr(t, err, rollout.ErrPrecondition) // no rings yet
	_, err = e.svc.Resolve(e.ctx, "org-a", "other", "")
	wantErr(t, err, rollout.ErrNotFound) // nothing rolled out yet
	_, err = e.svc.Resolve(e.ctx, "org-a", "no-such-image", "")
	wantErr(t, err, rollout.ErrNotFound)

	e.setup(label, threeRings())
	e.push(label, "v3", "fail")
	_, err = e.svc.StartRollout(e.ctx, admin, rollout.StartRequest{Label: label, Version: "v3"})
	wantErr(t, err, rollout.ErrPrecondition)
	_, err = e.svc.StartRollout(e.ctx, admin, rollout.StartRequest{Label: label, Version: "v3", Force: true})
	wantErr(t, err, rollout.ErrInvalid)
	r, err := e.svc.StartRollout(e.ctx, admin, rollout.StartRequest{Label: label, Version: "v3", Force: true, ForceReason: "the failing check is a known false positive"})
	e.must(err)
	if !r.Forced {
		t.Errorf("forced rollout not marked forced")
	}
	a, _, err := e.svc.Audit(e.ctx, rollout.AuditFilter{Action: "rollout.start"}, rollout.Page{Limit: 1})
	e.must(err)
	if len(a) != 1 || a[0].Reason != "the failing check is a known false positive" {
		t.Errorf("force reason not in the audit log: %+v", a)
	}
	_, err = e.svc.StartRollout(e.ctx, admin, rollout.StartRequest{Label: label, Version: "v1"})
	wantErr(t, err, rollout.ErrPrecondition) // already completed
	_, err = e.svc.StartRollout(e.ctx, admin, rollout.StartRequest{Label: label, Version: "v9"})
	wantErr(t, err, rollout.ErrNotFound)
	_, err = e.svc.StartRollout(e.ctx, admin, rollout.StartRequest{Label: label, Version: "v2", BakeTimes: map[string]time.Duration{"nope": time.Minute}})
	wantErr(t, err, rollout.ErrInvalid)
	_, err = e.svc.PushVersion(e.ctx, admin, rollout.Version{Label: label, Version: "v2"})
	wantErr(t, err, rollout.ErrConflict)
	_, err = e.svc.PushVersion(e.ctx, admin, rollout.Version{Label: label, Version: "v4", CheckReport: []byte(`{"verdict":`)})
	wantErr(t, err, rollout.ErrInvalid)
	_, err = e.svc.PushVersion(e.ctx, admin, rollout.Version{Label: "bad label", Version: "v4"})
	wantErr(t, err, rollout.ErrInvalid)
	v, err := e.svc.PushVersion(e.ctx, admin, rollout.Version{Label: label, Version: "v5", Gate: rollout.GatePass})
	e.must(err)
	if v.Gate != rollout.GateUnknown {
		t.Errorf("gate without a report = %s, want unknown", v.Gate)
	}
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	o := orgs(t)
	e.setup(label, threeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	p, err := e.svc.Pause(e.ctx, admin, r.ID, "waiting for the Monday freeze to end")
	e.must(err)
	if p.State != rollout.StatePaused {
		t.Fatalf("paused rollout is %s", p.State)
	}
	e.clock.Advance(3 * time.Hour)
	e.jobsDone(label, "v2", 0, 10, 0)
	e.tickTo(r.ID, rollout.StatePaused, 0)
	e.expect(label, map[string]string{o.r0: "v2", o.r1: "v1"})
	_, err = e.svc.Pause(e.ctx, admin, r.ID, "again")
	wantErr(t, err, rollout.ErrPrecondition)
	_, err = e.svc.Promote(e.ctx, admin, r.ID, "")
	wantErr(t, err, rollout.ErrPrecondition)
	_, err = e.svc.Resume(e.ctx, admin, r.ID, "freeze over")
	e.must(err)
	e.tickTo(r.ID, rollout.StateBaking, 1)
	e.expect(label, map[string]string{o.r0: "v2", o.r1: "v2"})
	_, err = e.svc.Pause(e.ctx, admin, "r-nope", "")
	wantErr(t, err, rollout.ErrNotFound)
}

func TestPromoteAndManualApproval(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	rings := threeRings()
	rings[1].ManualApproval = true
	e.setup(label, rings)
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	// Promote skips what is left of ring 0's bake time and jobs at once.
	p, err := e.svc.Promote(e.ctx, admin, r.ID, "canary looks fine")
	e.must(err)
	if p.State != rollout.StateBaking || p.Ring != 1 {
		t.Fatalf("after promote: %s ring %d, want baking ring 1", p.State, p.Ring)
	}
	e.clock.Advance(10 * time.Hour)
	e.jobsDone(label, "v2", 1, 50, 0)
	e.tickTo(r.ID, rollout.StateBaking, 1) // waits for a person
	e.tickTo(r.ID, rollout.StateBaking, 1)
	p, err = e.svc.Promote(e.ctx, admin, r.ID, "approved by release manager")
	e.must(err)
	if p.Ring != 2 || p.Approved != 1 {
		t.Fatalf("after approval: ring %d approved %d, want ring 2 approved 1", p.Ring, p.Approved)
	}
}

func TestRollbackMidRollout(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	o := orgs(t)
	e.setup(label, threeRings())
	// A second replica on the same database.
	other, err := rollout.NewService(e.ctx, e.db, rollout.ServiceOptions{Clock: e.clock, RefreshInterval: 10 * time.Millisecond})
	e.must(err)
	defer other.Close()

	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	e.clock.Advance(time.Hour)
	e.jobsDone(label, "v2", 0, 3, 0)
	e.tickTo(r.ID, rollout.StateBaking, 1)
	if res := e.resolve(o.r1, label, "run-1"); res.Version != "v2" {
		t.Fatalf("run-1 got %s", res.Version)
	}
	rb, err := e.svc.Rollback(e.ctx, admin, r.ID, "jobs on v2 time out")
	e.must(err)
	if rb.State != rollout.StateRolledBack {
		t.Fatalf("rolled back rollout is %s", rb.State)
	}
	// The very next resolve through this replica, for every ring and for
	// the run that had v2, returns v1.
	e.expect(label, map[string]string{o.r0: "v1", o.r1: "v1", o.r1c: "v1", o.r2: "v1"})
	if res := e.resolve(o.r1, label, "run-1"); res.Version != "v1" {
		t.Errorf("run-1 after rollback got %s (%s), want v1", res.Version, res.Reason)
	}
	// The other replica follows within its refresh interval.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := other.Resolve(e.ctx, o.r0, label, "")
		e.must(err)
		if res.Version == "v1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other replica still serves %s 10 s after the rollback", res.Version)
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.tickTo(r.ID, rollout.StateRolledBack, 1)
	_, err = e.svc.Rollback(e.ctx, admin, r.ID, "twice")
	wantErr(t, err, rollout.ErrPrecondition)
}

func TestHotfixSupersedesHalted(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	o := orgs(t)
	e.setup(label, threeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	e.clock.Advance(time.Hour)
	e.jobsDone(label, "v2", 0, 3, 0)
	e.tickTo(r.ID, rollout.StateBaking, 1)
	_, err := e.svc.Halt(e.ctx, admin, r.ID, "python3 -m venv broken on v2")
	e.must(err)
	e.tickTo(r.ID, rollout.StateHalted, 1)
	// Halted keeps the rings reached on v2.
	e.expect(label, map[string]string{o.r0: "v2", o.r1: "v2", o.r2: "v1"})

	e.push(label, "v3", "pass")
	h := e.start(rollout.StartRequest{Label: label, Version: "v3", Expedited: true, BakeTimes: map[string]time.Duration{"everyone": 20 * time.Minute}})
	if h.Supersedes != r.ID || h.FromVersion != "v1" || !h.Expedited {
		t.Fatalf("hotfix %+v: want superseding %s from v1", h, r.ID)
	}
	bakes := []time.Duration{h.Rings[0].BakeTime, h.Rings[1].BakeTime, h.Rings[2].BakeTime}
	if d := cmp.Diff([]time.Duration{6 * time.Minute, 12 * time.Minute, 20 * time.Minute}, bakes); d != "" {
		t.Errorf("expedited bake times (-want +got):\n%s", d)
	}
	if got := e.get(r.ID); got.State != rollout.StateSuperseded {
		t.Errorf("halted rollout is %s, want superseded", got.State)
	}
	// The broken version is gone from every ring the hotfix has not reached.
	e.expect(label, map[string]string{o.r0: "v1", o.r1: "v1", o.r2: "v1"})
	e.tickTo(h.ID, rollout.StateBaking, 0)
	for ring, bake := range bakes {
		e.clock.Advance(bake / 2)
		e.jobsDone(label, "v3", ring, 3, 0)
		e.tickTo(h.ID, rollout.StateBaking, ring) // every gate still applies
		e.clock.Advance(bake / 2)
		if ring < 2 {
			e.tickTo(h.ID, rollout.StateBaking, ring+1)
		}
	}
	e.tickTo(h.ID, rollout.StateCompleted, 2)
	e.expect(label, map[string]string{o.r0: "v3", o.r1: "v3", o.r1c: "v3", o.r2: "v3"})
}

func TestHealthGate(t *testing.T) {
	for _, auto := range []bool{false, true} {
		name := map[bool]string{false: "halt", true: "auto rollback"}[auto]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, rollout.ServiceOptions{Health: rollout.FailureRateHealth{MaxFailureRate: 0.05, MinJobs: 10}})
			o := orgs(t)
			e.setup(label, threeRings())
			r := e.start(rollout.StartRequest{Label: label, Version: "v2", AutoRollback: auto})
			e.tickTo(r.ID, rollout.StateBaking, 0)
			e.clock.Advance(2 * time.Hour)
			// Too few jobs to judge: health unknown, the rollout waits.
			e.jobsDone(label, "v2", 0, 5, 0)
			e.tickTo(r.ID, rollout.StateBaking, 0)
			e.jobsDone(label, "v2", 0, 5, 0)
			e.jobsDone(label, "v1", 2, 100, 2) // baseline 2%
			e.tickTo(r.ID, rollout.StateBaking, 1)
			e.clock.Advance(time.Minute)
			e.jobsDone(label, "v1", 2, 100, 2)
			e.jobsDone(label, "v2", 1, 20, 4) // 20%: a spike
			want := rollout.StateHalted
			if auto {
				want = rollout.StateRolledBack
			}
			got := e.tickTo(r.ID, want, 1)
			if !strings.Contains(got.Reason, "failure rate") {
				t.Errorf("reason %q does not say why", got.Reason)
			}
			v := "v2"
			if auto {
				v = "v1"
			}
			e.expect(label, map[string]string{o.r0: v, o.r2: "v1"})
		})
	}
}

// TestAutoRollbackSurvivesRestart: the choice to roll back, asked for at
// start or by the policy of the replica that started the rollout, is
// stored with the rollout, so a new process without that policy still
// rolls back on a failure-rate spike.
func TestAutoRollbackSurvivesRestart(t *testing.T) {
	tests := []struct {
		name            string
		request, policy bool
		want            rollout.State
	}{
		{"requested", true, false, rollout.StateRolledBack},
		{"policy of the starting replica", false, true, rollout.StateRolledBack},
		{"neither", false, false, rollout.StateHalted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			health := rollout.FailureRateHealth{MaxFailureRate: 0.05, MinJobs: 10}
			e := newEnv(t, rollout.ServiceOptions{Health: health, AutoRollback: tc.policy})
			o := orgs(t)
			e.setup(label, threeRings())
			r := e.start(rollout.StartRequest{Label: label, Version: "v2", AutoRollback: tc.request})
			if want := tc.request || tc.policy; r.AutoRollback != want {
				t.Fatalf("started rollout has AutoRollback %v, want %v", r.AutoRollback, want)
			}
			e.tickTo(r.ID, rollout.StateBaking, 0)
			e.crash(rollout.ServiceOptions{Health: health}, "replica-b")
			e.clock.Advance(2 * time.Hour)
			e.jobsDone(label, "v2", 0, 10, 0)
			e.jobsDone(label, "v1", 2, 100, 2) // baseline 2%
			e.tickTo(r.ID, rollout.StateBaking, 1)
			e.clock.Advance(time.Minute)
			e.jobsDone(label, "v1", 2, 100, 2)
			e.jobsDone(label, "v2", 1, 20, 4) // 20%: a spike
			got := e.tickTo(r.ID, tc.want, 1)
			if !strings.Contains(got.Reason, "failure rate") {
				t.Errorf("reason %q does not say why", got.Reason)
			}
			v := "v2" // halted: ring 0 keeps the new version
			if tc.want == rollout.StateRolledBack {
				v = "v1"
			}
			e.expect(label, map[string]string{o.r0: v, o.r2: "v1"})
		})
	}
}
