package rollout

import (
	"fmt"
	"time"
)

// Rollout state machine.
//
//	pending ─▶ baking(0) ─▶ baking(1) … ─▶ completed
//	   pending/baking ⇄ paused, halted (resume)
//	   any non-terminal ─▶ rolled-back | superseded
//
// Paused and halted freeze the rollout where it is: rings already reached
// keep the new version, the others keep the old one, and the controller
// leaves it alone. Halting does not take the version back, because a halt
// may be a false alarm a person wants to look at first; Rollback does (or
// the health gate, when the rollout was started with AutoRollback).
// Completed, rolled-back and superseded are terminal.

// Terminal reports whether a rollout in state can no longer change.
func Terminal(state State) bool {
	return state == StateCompleted || state == StateRolledBack || state == StateSuperseded
}

// activeStates are the non-terminal states: at most one rollout per label
// is in one of them.
var activeStates = []State{StatePending, StateBaking, StatePaused, StateHalted}

// GateInput is what the controller observed for one rollout's current ring.
type GateInput struct {
	Now time.Time
	// Jobs is how many jobs of the new version finished (succeeded or
	// failed) in the current ring since it started.
	Jobs   int64
	Health HealthResult
	// AutoRollback turns an unhealthy verdict into a rollback instead of a
	// halt.
	AutoRollback bool
	// StartHold, for a pending rollout, says why it may not start ring 0
	// yet (a StartGate's verdict: ring 0's notice period); "" lets it.
	StartHold string
}

// Step is one decision of the reconcile loop: the rollout's next state (or
// r itself when it must wait), the audit action of the transition ("" when
// waiting), and why. It is a pure function of its inputs, so a controller
// that crashed and restarts decides the same again.
func Step(r Rollout, in GateInput) (next Rollout, action, why string) {
	next = r
	if isActive(r.State) && (r.Ring < 0 || r.Ring >= len(r.Rings)) {
		// Only a damaged row gets here; stop rather than guess.
		next.State = StateHalted
		next.Reason = fmt.Sprintf("ring %d is outside the rollout's plan of %d rings; start a new rollout", r.Ring, len(r.Rings))
		if r.State == StateHalted {
			return r, "", next.Reason
		}
		return next, "rollout.halt", next.Reason
	}
	switch r.State {
	case StatePending:
		if in.StartHold != "" {
			return r, "", fmt.Sprintf("ring 0 (%s) not started: %s", r.Rings[0].Name, in.StartHold)
		}
		next.State, next.Ring, next.RingStartedAt = StateBaking, 0, in.Now
		return next, "rollout.ring", fmt.Sprintf("started: baking in ring 0 (%s)", r.Rings[0].Name)
	case StateBaking:
	default:
		return r, "", "state " + string(r.State) + ": the controller does nothing"
	}
	ring := r.Rings[r.Ring]
	approved := r.Approved >= r.Ring
	if in.Health.Known && !in.Health.Healthy {
		next.Reason = fmt.Sprintf("health gate in ring %d (%s): %s", r.Ring, ring.Name, in.Health.Reason)
		if in.AutoRollback {
			next.State = StateRolledBack
			return next, "rollout.rollback", next.Reason
		}
		next.State = StateHalted
		return next, "rollout.halt", next.Reason
	}
	elapsed := in.Now.Sub(r.RingStartedAt)
	switch {
	case !approved && elapsed < ring.BakeTime:
		return r, "", fmt.Sprintf("baking ring %d (%s): %s of %s elapsed", r.Ring, ring.Name, elapsed.Round(time.Second), ring.BakeTime)
	case !approved && in.Jobs < int64(ring.MinJobs):
		return r, "", fmt.Sprintf("baking ring %d (%s): %d of %d jobs seen", r.Ring, ring.Name, in.Jobs, ring.MinJobs)
	case ring.ManualApproval && !approved:
		return r, "", fmt.Sprintf("ring %d (%s) waits for manual approval (promote)", r.Ring, ring.Name)
	case !in.Health.Known && !approved:
		return r, "", fmt.Sprintf("ring %d (%s): health not known yet: %s", r.Ring, ring.Name, in.Health.Reason)
	}
	if r.Ring == len(r.Rings)-1 {
		next.State, next.Reason = StateCompleted, ""
		return next, "rollout.complete", fmt.Sprintf("left the last ring %d (%s)", r.Ring, ring.Name)
	}
	next.Ring, next.RingStartedAt = r.Ring+1, in.Now
	return next, "rollout.ring", fmt.Sprintf("left ring %d (%s): now baking in ring %d (%s)", r.Ring, ring.Name, next.Ring, r.Rings[next.Ring].Name)
}
