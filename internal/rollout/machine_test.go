package rollout_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/rollout"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func baking(ring int, started time.Time) rollout.Rollout {
	return rollout.Rollout{ID: "r-1", Label: "ubuntu-22.04", Version: "v2", FromVersion: "v1", State: rollout.StateBaking,
		Ring: ring, RingStartedAt: started, Rings: threeRings(), Approved: -1}
}

func TestStep(t *testing.T) {
	healthy := rollout.HealthResult{Known: true, Healthy: true}
	unknown := rollout.HealthResult{Reason: "too few jobs"}
	sick := rollout.HealthResult{Known: true, Reason: "failure rate 40%"}
	pending := baking(0, time.Time{})
	pending.State = rollout.StatePending
	approved := baking(1, t0)
	approved.Approved = 1
	manual := baking(1, t0)
	manual.Rings[1].ManualApproval = true
	manualApproved := manual
	manualApproved.Approved = 1
	paused := baking(1, t0)
	paused.State = rollout.StatePaused

	type want struct {
		action  string
		state   rollout.State
		ring    int
		started time.Time
	}
	for _, tc := range []struct {
		name string
		r    rollout.Rollout
		in   rollout.GateInput
		want want
	}{
		{"pending starts ring 0", pending, rollout.GateInput{Now: t0}, want{"rollout.ring", rollout.StateBaking, 0, t0}},
		{"pending held by its start gate", pending, rollout.GateInput{Now: t0, StartHold: "ring 0's notice period"}, want{"", rollout.StatePending, 0, time.Time{}}},
		{"bake not elapsed", baking(0, t0), rollout.GateInput{Now: t0.Add(59 * time.Minute), Jobs: 10, Health: healthy}, want{"", rollout.StateBaking, 0, t0}},
		{"too few jobs", baking(0, t0), rollout.GateInput{Now: t0.Add(2 * time.Hour), Jobs: 2, Health: healthy}, want{"", rollout.StateBaking, 0, t0}},
		{"health unknown waits", baking(0, t0), rollout.GateInput{Now: t0.Add(2 * time.Hour), Jobs: 3, Health: unknown}, want{"", rollout.StateBaking, 0, t0}},
		{"all gates pass", baking(0, t0), rollout.GateInput{Now: t0.Add(time.Hour), Jobs: 3, Health: healthy}, want{"rollout.ring", rollout.StateBaking, 1, t0.Add(time.Hour)}},
		{"last ring completes", baking(2, t0), rollout.GateInput{Now: t0.Add(5 * time.Hour), Jobs: 3, Health: healthy}, want{"rollout.complete", rollout.StateCompleted, 2, t0}},
		{"unhealthy halts before bake ends", baking(1, t0), rollout.GateInput{Now: t0.Add(time.Minute), Jobs: 50, Health: sick}, want{"rollout.halt", rollout.StateHalted, 1, t0}},
		{"unhealthy rolls back when asked", baking(1, t0), rollout.GateInput{Now: t0.Add(time.Minute), Health: sick, AutoRollback: true}, want{"rollout.rollback", rollout.StateRolledBack, 1, t0}},
		{"promoted skips bake, jobs, unknown health", approved, rollout.GateInput{Now: t0.Add(time.Minute), Health: unknown}, want{"rollout.ring", rollout.StateBaking, 2, t0.Add(time.Minute)}},
		{"promoted but unhealthy halts", approved, rollout.GateInput{Now: t0.Add(time.Minute), Health: sick}, want{"rollout.halt", rollout.StateHalted, 1, t0}},
		{"manual approval holds", manual, rollout.GateInput{Now: t0.Add(10 * time.Hour), Jobs: 100, Health: healthy}, want{"", rollout.StateBaking, 1, t0}},
		{"manual approval given", manualApproved, rollout.GateInput{Now: t0.Add(10 * time.Hour), Jobs: 100, Health: healthy}, want{"rollout.ring", rollout.StateBaking, 2, t0.Add(10 * time.Hour)}},
		{"damaged ring index halts", baking(3, t0), rollout.GateInput{Now: t0.Add(time.Hour)}, want{"rollout.halt", rollout.StateHalted, 3, t0}},
		{"paused does nothing", paused, rollout.GateInput{Now: t0.Add(10 * time.Hour), Jobs: 100, Health: sick}, want{"", rollout.StatePaused, 1, t0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, action, why := rollout.Step(tc.r, tc.in)
			got := want{action, next.State, next.Ring, next.RingStartedAt}
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); d != "" {
				t.Errorf("Step (-want +got):\n%s\nwhy: %s", d, why)
			}
			if why == "" {
				t.Errorf("Step gave no reason")
			}
			if action == "" && !cmp.Equal(tc.r, next) {
				t.Errorf("Step changed the rollout without an action")
			}
			// Deciding twice from the same state gives the same decision:
			// a controller that crashed after deciding but before writing
			// decides the same after restart.
			again, action2, _ := rollout.Step(tc.r, tc.in)
			if action2 != action || !cmp.Equal(again, next) {
				t.Errorf("Step is not deterministic")
			}
		})
	}
}
