package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

const label = "ubuntu-22.04"

var threeRings = []rollout.Ring{
	{Name: "canary", Orgs: []string{"imagegate-team"}, Percent: 0, BakeTime: time.Hour},
	{Name: "early", Percent: 30, BakeTime: 2 * time.Hour},
	{Name: "everyone", Percent: 100},
}

const passReport = `{"verdict":"pass"}`

// wantVersions resolves every org (one per ring) and compares.
func wantVersions(t *testing.T, c *apiclient.Client, orgs []string, want ...string) {
	t.Helper()
	for i, org := range orgs {
		res, err := c.Resolve(context.Background(), org, label, "")
		if err != nil {
			t.Fatalf("resolve %s (ring %d): %v", org, i, err)
		}
		if res.Version != want[i] {
			t.Errorf("resolve %s (ring %d) = %s (%s: %s), want %s", org, i, res.Version, res.Reason, res.Detail, want[i])
		}
	}
}

func getRollout(t *testing.T, c *apiclient.Client, id string) rollout.Rollout {
	t.Helper()
	r, err := c.Rollout(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantState(t *testing.T, c *apiclient.Client, id string, state rollout.State, ring int) {
	t.Helper()
	r := getRollout(t, c, id)
	if r.State != state || r.Ring != ring {
		t.Fatalf("rollout %s is %s in ring %d (%s), want %s in ring %d", id, r.State, r.Ring, r.Reason, state, ring)
	}
}

// TestRolloutLifecycle drives versions through three rings over HTTP on
// a controllable clock: bake times, pause/resume, promote, rollback
// mid-rollout, and a hotfix superseding a halted rollout.
func TestRolloutLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := e.admin
	if err := admin.SetRings(ctx, "", threeRings); err != nil {
		t.Fatal(err)
	}
	orgs := orgsByRing(t, threeRings)
	runner := e.runner

	// The first version becomes the default at once.
	mustPush(t, admin, label, "v1", passReport)
	r1, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, admin, r1.ID, rollout.StateCompleted, 2)
	wantVersions(t, runner, orgs, "v1", "v1", "v1")

	// v2 through the rings by bake time.
	mustPush(t, admin, label, "v2", passReport)
	r2, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	e.tick(t, 0)
	wantState(t, admin, r2.ID, rollout.StateBaking, 0)
	wantVersions(t, runner, orgs, "v2", "v1", "v1")
	e.tick(t, 59*time.Minute)
	wantState(t, admin, r2.ID, rollout.StateBaking, 0)
	e.tick(t, 2*time.Minute)
	wantState(t, admin, r2.ID, rollout.StateBaking, 1)
	wantVersions(t, runner, orgs, "v2", "v2", "v1")

	// Paused, it stays in ring 1 however long it waits.
	if _, err := admin.Act(ctx, r2.ID, apiclient.ActionPause, "looking at a report"); err != nil {
		t.Fatal(err)
	}
	e.tick(t, 5*time.Hour)
	wantState(t, admin, r2.ID, rollout.StatePaused, 1)
	wantVersions(t, runner, orgs, "v2", "v2", "v1")
	if _, err := admin.Act(ctx, r2.ID, apiclient.ActionResume, "report was noise"); err != nil {
		t.Fatal(err)
	}
	// Promote leaves ring 1 without waiting for the rest of its bake.
	e.tick(t, 0)
	if r := getRollout(t, admin, r2.ID); r.State == rollout.StateBaking && r.Ring == 1 {
		if _, err := admin.Act(ctx, r2.ID, apiclient.ActionPromote, "enough evidence"); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		e.tick(t, time.Minute)
	}
	wantState(t, admin, r2.ID, rollout.StateCompleted, 2)
	wantVersions(t, runner, orgs, "v2", "v2", "v2")

	// Rollback mid-rollout: the very next resolve answers v2 everywhere.
	mustPush(t, admin, label, "v3", passReport)
	r3, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v3"})
	if err != nil {
		t.Fatal(err)
	}
	e.tick(t, 0)
	e.tick(t, 61*time.Minute)
	wantState(t, admin, r3.ID, rollout.StateBaking, 1)
	wantVersions(t, runner, orgs, "v3", "v3", "v2")
	rb, err := admin.Act(ctx, r3.ID, apiclient.ActionRollback, "jobs fail on v3")
	if err != nil {
		t.Fatal(err)
	}
	if rb.State != rollout.StateRolledBack {
		t.Fatalf("after rollback the rollout is %s", rb.State)
	}
	wantVersions(t, runner, orgs, "v2", "v2", "v2")

	// A halted rollout is superseded by an expedited hotfix, which still
	// passes every ring, with shorter bake times.
	mustPush(t, admin, label, "v4", passReport)
	r4, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v4"})
	if err != nil {
		t.Fatal(err)
	}
	e.tick(t, 0)
	if _, err := admin.Act(ctx, r4.ID, apiclient.ActionHalt, "CVE found in v4"); err != nil {
		t.Fatal(err)
	}
	wantState(t, admin, r4.ID, rollout.StateHalted, 0)
	mustPush(t, admin, label, "v5", passReport)
	r5, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v5", Expedited: true})
	if err != nil {
		t.Fatal(err)
	}
	if r5.Supersedes != r4.ID {
		t.Errorf("hotfix supersedes %q, want %q", r5.Supersedes, r4.ID)
	}
	wantState(t, admin, r4.ID, rollout.StateSuperseded, 0)
	e.tick(t, 0)
	wantState(t, admin, r5.ID, rollout.StateBaking, 0)
	wantVersions(t, runner, orgs, "v5", "v2", "v2")
	e.tick(t, 7*time.Minute) // 0.1 x 1h
	wantState(t, admin, r5.ID, rollout.StateBaking, 1)
	e.tick(t, 13*time.Minute) // 0.1 x 2h
	e.tick(t, time.Minute)
	wantState(t, admin, r5.ID, rollout.StateCompleted, 2)
	wantVersions(t, runner, orgs, "v5", "v5", "v5")

	st, err := admin.Status(ctx, label)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rollout == nil || st.Rollout.ID != r5.ID || st.Default != "v5" {
		t.Errorf("status: rollout %+v default %q, want %s and v5", st.Rollout, st.Default, r5.ID)
	}

	// Every change is in the audit log with its actor and reason.
	audit, err := admin.Audit(ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + r3.ID}, rollout.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, a := range audit.Items {
		if a.Reason == "jobs fail on v3" && a.Actor == adminActor {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit entry for the rollback of %s by the admin: %+v", r3.ID, audit.Items)
	}

	// A version whose gate failed needs force with a reason.
	mustPush(t, admin, label, "v6", `{"verdict":"fail"}`)
	_, err = admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v6"})
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 412 || !errors.Is(err, rollout.ErrPrecondition) {
		t.Fatalf("start of a failed version: %v, want HTTP 412 precondition_failed", err)
	}
	r6, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v6", Force: true, ForceReason: "the failure is a false positive, see #12"})
	if err != nil || !r6.Forced {
		t.Fatalf("forced start: %+v, %v", r6, err)
	}
}

// TestConcurrentResolvesWhileAdvancing resolves from many goroutines over
// HTTP while the controller moves a rollout through every ring: every
// answer is the old or the new version, never an error.
func TestConcurrentResolvesWhileAdvancing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.admin.SetRings(ctx, "", threeRings); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "old", passReport)
	if _, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "old"}); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "new", passReport)
	r, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "new"})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var n atomic.Int64
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				org := fmt.Sprintf("org-%d", (w*7919+i)%500)
				res, err := e.runner.Resolve(ctx, org, label, fmt.Sprintf("run-%d-%d", w, i))
				if err == nil && res.Version != "old" && res.Version != "new" {
					err = fmt.Errorf("resolve %s = %q", org, res.Version)
				}
				if err != nil {
					errs <- err
					return
				}
				n.Add(1)
			}
		}()
	}
	for range 6 {
		time.Sleep(20 * time.Millisecond)
		e.tick(t, 3*time.Hour)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantState(t, e.admin, r.ID, rollout.StateCompleted, 2)
	if n.Load() == 0 {
		t.Fatal("no resolve answered")
	}
	res, err := e.runner.Resolve(ctx, "org-1", label, "")
	if err != nil || res.Version != "new" {
		t.Fatalf("after completion: %+v, %v", res, err)
	}
}
