package rollout

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// lastGood is the newest completed version of label that is not revoked.
func (s *Service) lastGood(ctx context.Context, label string) (string, error) {
	var out string
	var ferr error
	err := each(ctx, func(p Page) ([]Rollout, string, error) {
		return s.st.ListRollouts(ctx, label, []State{StateCompleted}, p)
	}, func(r Rollout) bool {
		v, err := s.st.GetVersion(ctx, label, r.Version, false)
		if err != nil {
			ferr = err
			return false
		}
		if v.Revoked {
			return true
		}
		out = r.Version
		return false
	})
	if err == nil {
		err = ferr
	}
	return out, errWrap(err, "find the last completed version of %s", label)
}

func (s *Service) activeRollouts(ctx context.Context, label string) ([]Rollout, error) {
	var out []Rollout
	err := each(ctx, func(p Page) ([]Rollout, string, error) { return s.st.ListRollouts(ctx, label, activeStates, p) },
		func(r Rollout) bool { out = append(out, r); return true })
	return out, errWrap(err, "list active rollouts of %q", label)
}

// StartRollout starts rolling req.Version out through the label's rings,
// from the last completed version. A rollout of the label still pending,
// baking, paused or halted is superseded in the same transaction (a
// hotfix). The first version of a label has nothing to roll out from and
// completes at once. ErrPrecondition when the version's gate failed and
// req.Force is not set, or it is revoked.
func (s *Service) StartRollout(ctx context.Context, actor string, req StartRequest) (Rollout, error) {
	if err := checkNames("start rollout", "label", req.Label, "version", req.Version); err != nil {
		return Rollout{}, err
	}
	for _, f := range []struct{ name, text string }{{"forceReason", req.ForceReason}, {"reason", req.Reason}} {
		if err := CheckText(f.name, f.text, MaxReason); err != nil {
			return Rollout{}, fmt.Errorf("start rollout of %s %s: %w", req.Label, req.Version, err)
		}
	}
	v, err := s.st.GetVersion(ctx, req.Label, req.Version, false)
	if err != nil {
		return Rollout{}, errWrap(err, "start rollout of %s %s (push the version first)", req.Label, req.Version)
	}
	switch {
	case v.Revoked:
		return Rollout{}, fmt.Errorf("start rollout of %s %s: the version is revoked (%s): %w", req.Label, req.Version, v.RevokedReason, ErrPrecondition)
	case req.Force && strings.TrimSpace(req.ForceReason) == "":
		return Rollout{}, fmt.Errorf("start rollout of %s %s: force needs a reason for the audit log: %w", req.Label, req.Version, ErrInvalid)
	case v.Gate == GateFail && !req.Force:
		return Rollout{}, fmt.Errorf("start rollout of %s %s: its check gate failed; fix the image or force with a reason: %w", req.Label, req.Version, ErrPrecondition)
	case v.Gate == GateUnknown && !req.Force && !s.opts.AllowUnknownGate:
		return Rollout{}, fmt.Errorf("start rollout of %s %s: its gate is unknown (pushed without a check report); push a checked version, or force with a reason (the serve config's policies.allowUnknownGate relaxes this): %w",
			req.Label, req.Version, ErrPrecondition)
	}
	unknownAllowed := v.Gate == GateUnknown && !req.Force
	plan, err := s.st.GetRings(ctx, req.Label)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Rollout{}, fmt.Errorf("start rollout of %s: no ring plan for the image nor a global one; set rings first: %w", req.Label, ErrPrecondition)
		}
		return Rollout{}, errWrap(err, "read rings of %s", req.Label)
	}
	rings := slices.Clone(plan)
	for name := range req.BakeTimes {
		if !slices.ContainsFunc(rings, func(r Ring) bool { return r.Name == name }) {
			return Rollout{}, fmt.Errorf("start rollout of %s: bake time for unknown ring %q (rings: %v): %w", req.Label, name, ringNames(rings), ErrInvalid)
		}
	}
	for i := range rings {
		rings[i].Orgs = slices.Clone(rings[i].Orgs)
		if d, ok := req.BakeTimes[rings[i].Name]; ok {
			if d < 0 {
				return Rollout{}, fmt.Errorf("start rollout of %s: negative bake time for ring %q: %w", req.Label, rings[i].Name, ErrInvalid)
			}
			rings[i].BakeTime = d
		} else if req.Expedited {
			rings[i].BakeTime = time.Duration(float64(rings[i].BakeTime) * s.opts.ExpeditedBakeFactor)
		}
	}
	if err := ValidateRings(rings); err != nil {
		return Rollout{}, fmt.Errorf("ring plan of %s: %w", req.Label, err)
	}
	for attempt := 0; ; attempt++ {
		from, err := s.lastGood(ctx, req.Label)
		if err != nil {
			return Rollout{}, err
		}
		if from == req.Version {
			return Rollout{}, fmt.Errorf("start rollout of %s %s: it is already the completed version: %w", req.Label, req.Version, ErrPrecondition)
		}
		active, err := s.activeRollouts(ctx, req.Label)
		if err != nil {
			return Rollout{}, err
		}
		now := s.clock.Now()
		r := Rollout{ID: newRolloutID(), Label: req.Label, Version: req.Version, FromVersion: from, State: StatePending,
			Rings: rings, Expedited: req.Expedited, Forced: req.Force, ForceReason: req.ForceReason,
			AutoRollback: req.AutoRollback || s.opts.AutoRollback, Approved: -1, CreatedAt: now, UpdatedAt: now}
		if from == "" {
			r.State, r.Ring, r.RingStartedAt = StateCompleted, len(rings)-1, now
			r.Reason = "first version of the image: nothing to roll out from"
		}
		var sup *Rollout
		if len(active) > 0 {
			a := active[0]
			sup = &a
			r.Supersedes = a.ID
			a.State, a.Reason, a.UpdatedAt = StateSuperseded, "superseded by a rollout of "+req.Version, now
		}
		reason := startReason(req)
		err = s.st.CreateRollout(ctx, &r, sup, AuditEntry{Actor: actor, Action: "rollout.start", Subject: "rollout/" + r.ID,
			Reason: reason, Details: details("version", r.Version, "from", from, "expedited", r.Expedited, "supersedes", r.Supersedes, "forced", r.Forced,
				"autoRollback", r.AutoRollback, "state", r.State, "gate", v.Gate, "unknownGateAllowed", unknownAllowed)})
		if errors.Is(err, ErrConflict) && attempt < 3 {
			continue // the superseded rollout moved meanwhile: decide again
		}
		if err != nil {
			return Rollout{}, errWrap(err, "start rollout of %s %s", req.Label, req.Version)
		}
		return r, s.refresh(ctx)
	}
}

// newRolloutID names a rollout before it is stored, so its audit entry
// can name it too.
func newRolloutID() string {
	var b [6]byte
	rand.Read(b[:])
	return "r-" + hex.EncodeToString(b[:])
}

func ringNames(rings []Ring) []string {
	var out []string
	for _, r := range rings {
		out = append(out, r.Name)
	}
	return out
}

// errNoChange tells transition the rollout is already where asked.
var errNoChange = errors.New("no change")

// transition applies fn to the current rollout id and writes it with an
// audit entry, retrying from a fresh read when someone else (the
// controller) changed it meanwhile.
func (s *Service) transition(ctx context.Context, actor, id, action, reason string, fn func(r *Rollout) error) (Rollout, error) {
	if err := CheckName("rollout id", id); err != nil {
		return Rollout{}, err
	}
	if err := CheckText("reason", reason, MaxReason); err != nil {
		return Rollout{}, fmt.Errorf("%s %s: %w", action, id, err)
	}
	for attempt := 0; ; attempt++ {
		r, err := s.st.GetRollout(ctx, id)
		if err != nil {
			return Rollout{}, errWrap(err, "rollout %s", id)
		}
		from := r.State
		if err := fn(&r); err != nil {
			return r, err
		}
		r.UpdatedAt = s.clock.Now()
		err = s.st.UpdateRollout(ctx, &r, AuditEntry{Actor: actor, Action: action, Subject: "rollout/" + id, Reason: reason,
			Details: details("from", from, "to", r.State, "ring", r.Ring, "version", r.Version)})
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return Rollout{}, errWrap(err, "%s %s", action, id)
		}
		if r.State == StateRolledBack {
			if err := s.st.ForgetRuns(ctx, r.Label); err != nil {
				return r, errWrap(err, "forget runs of %s after rolling back %s", r.Label, id)
			}
		}
		return r, s.refresh(ctx)
	}
}

func precondition(r *Rollout, verb string, allowed ...State) error {
	if slices.Contains(allowed, r.State) {
		return nil
	}
	return fmt.Errorf("cannot %s rollout %s: it is %s (allowed when %v): %w", verb, r.ID, r.State, allowed, ErrPrecondition)
}

// Pause freezes a pending or baking rollout where it is.
func (s *Service) Pause(ctx context.Context, actor, id, reason string) (Rollout, error) {
	return s.transition(ctx, actor, id, "rollout.pause", reason, func(r *Rollout) error {
		if err := precondition(r, "pause", StatePending, StateBaking); err != nil {
			return err
		}
		r.State, r.Reason = StatePaused, reason
		return nil
	})
}

// Resume continues a paused or halted rollout. Bake time keeps counting
// from when the ring started; the gates are evaluated again.
func (s *Service) Resume(ctx context.Context, actor, id, reason string) (Rollout, error) {
	return s.transition(ctx, actor, id, "rollout.resume", reason, func(r *Rollout) error {
		if err := precondition(r, "resume", StatePaused, StateHalted); err != nil {
			return err
		}
		r.State, r.Reason = StateBaking, ""
		if r.RingStartedAt.IsZero() {
			r.State = StatePending // paused before it started
		}
		return nil
	})
}

// Halt stops a rollout where it is (rings reached keep the new version);
// Rollback takes the version back.
func (s *Service) Halt(ctx context.Context, actor, id, reason string) (Rollout, error) {
	return s.transition(ctx, actor, id, "rollout.halt", reason, func(r *Rollout) error {
		if err := precondition(r, "halt", StatePending, StateBaking, StatePaused); err != nil {
			return err
		}
		r.State, r.Reason = StateHalted, reason
		return nil
	})
}

// Rollback returns every ring of the image to the rollout's FromVersion at
// once and forgets the label's run affinity; effective on this replica's
// next Resolve, on others' within their refresh interval.
func (s *Service) Rollback(ctx context.Context, actor, id, reason string) (Rollout, error) {
	return s.transition(ctx, actor, id, "rollout.rollback", reason, func(r *Rollout) error {
		if err := precondition(r, "roll back", activeStates...); err != nil {
			return fmt.Errorf("%w; to go back from a completed version, start a rollout of the version you want (or pin)", err)
		}
		r.State, r.Reason = StateRolledBack, reason
		return nil
	})
}

// Promote approves leaving the current ring now: its remaining bake time,
// minimum jobs and manual approval are waived, but an unhealthy verdict
// still halts. The decision is taken at once (not on the next tick).
func (s *Service) Promote(ctx context.Context, actor, id, reason string) (Rollout, error) {
	r, err := s.transition(ctx, actor, id, "rollout.promote", reason, func(r *Rollout) error {
		if err := precondition(r, "promote", StateBaking); err != nil {
			return err
		}
		r.Approved = r.Ring
		return nil
	})
	if err != nil {
		return r, err
	}
	next, _, err := s.reconcile(ctx, actor, r)
	return next, err
}

// reconcile takes one controller decision for r (see Step) and writes it.
// A conflicting concurrent change is not an error: the next pass decides
// from the new state. It returns the rollout as it now is and why it waits.
func (s *Service) reconcile(ctx context.Context, actor string, r Rollout) (Rollout, string, error) {
	in, err := s.gateInput(ctx, r)
	if err != nil {
		return r, "", err
	}
	if in.Health.Action == ActionDryRun && in.Health.Decision != nil {
		r = s.recordDryRun(ctx, actor, r, in)
	}
	next, action, why := Step(r, in)
	if action == "" {
		return r, why, nil
	}
	next.UpdatedAt = in.Now
	err = s.st.UpdateRollout(ctx, &next, AuditEntry{Actor: actor, Action: action, Subject: "rollout/" + r.ID, Reason: why,
		Details: details("from", r.State, "to", next.State, "fromRing", r.Ring, "ring", next.Ring, "jobs", in.Jobs, "health", in.Health)})
	if errors.Is(err, ErrConflict) {
		cur, gerr := s.st.GetRollout(ctx, r.ID)
		if gerr != nil {
			return r, "", errWrap(gerr, "rollout %s", r.ID)
		}
		return cur, "changed meanwhile", nil
	}
	if err != nil {
		return r, "", errWrap(err, "%s %s", action, r.ID)
	}
	if in.Health.Known && !in.Health.Healthy && (next.State == StateHalted || next.State == StateRolledBack) {
		act := ActionHalt
		if next.State == StateRolledBack {
			act = ActionRollback
		}
		s.notify(ctx, Notice{Action: act, Rollout: next, Ring: r.Ring, Reason: next.Reason, Health: in.Health, At: in.Now})
	}
	if next.State == StateRolledBack {
		if err := s.st.ForgetRuns(ctx, r.Label); err != nil {
			return next, "", errWrap(err, "forget runs of %s", r.Label)
		}
	}
	return next, why, s.refresh(ctx)
}

type dryRunKey struct {
	rollout, signature string
	ring               int
}

// recordDryRun writes a dry-run's would-be decision to the audit log (and
// tells the Notifier) once per rollout, ring and signature this process
// has seen; a restart records it once more. It returns r as now stored;
// on a concurrent change r itself, for Step's write to find the conflict.
func (s *Service) recordDryRun(ctx context.Context, actor string, r Rollout, in GateInput) Rollout {
	d := in.Health.Decision
	key := dryRunKey{rollout: r.ID, ring: r.Ring, signature: "aggregate"}
	if d.Signature != nil {
		key.signature = d.Signature.ID
	}
	if _, done := s.dryRuns.Load(key); done {
		return r
	}
	cur := r
	cur.UpdatedAt = in.Now
	err := s.st.UpdateRollout(ctx, &cur, AuditEntry{Actor: actor, Action: "rollout.dry-run", Subject: "rollout/" + r.ID,
		Reason: in.Health.Reason, Details: details("ring", r.Ring, "state", r.State, "version", r.Version, "health", in.Health)})
	if err != nil {
		if !errors.Is(err, ErrConflict) {
			s.log.Warn("record dry-run decision", "rollout", r.ID, "err", err)
		}
		return r
	}
	s.dryRuns.Store(key, true)
	s.log.Info("dry-run decision, not acted on", "rollout", r.ID, "label", r.Label, "version", r.Version, "decision", d.summaryLine())
	s.notify(ctx, Notice{Action: ActionDryRun, Rollout: cur, Ring: r.Ring, Reason: in.Health.Reason, Health: in.Health, At: in.Now})
	return cur
}

// notify is the one place decisions reach the Notifier.
func (s *Service) notify(ctx context.Context, n Notice) {
	if s.opts.Notifier == nil {
		return
	}
	if err := s.opts.Notifier.Notify(ctx, n); err != nil {
		s.log.Warn("notify decision", "rollout", n.Rollout.ID, "action", n.Action, "err", err)
	}
}

func (s *Service) gateInput(ctx context.Context, r Rollout) (GateInput, error) {
	in := GateInput{Now: s.clock.Now(), Health: HealthResult{Known: true, Healthy: true}}
	// The stored choice, so it holds after a restart and on whichever
	// replica runs the controller. The service-wide policy still covers
	// rollouts stored without it (started before the policy was turned on,
	// or before rollouts kept the choice).
	in.AutoRollback = r.AutoRollback || s.opts.AutoRollback
	if g, ok := s.health.(StartGate); ok && r.State == StatePending {
		h, err := g.MayStart(ctx, r)
		if err != nil {
			return in, fmt.Errorf("may rollout %s start: %w", r.ID, err)
		}
		if !h.Known || !h.Healthy {
			in.StartHold = cmp.Or(h.Reason, "held by the start gate")
		}
	}
	if r.State != StateBaking {
		return in, nil
	}
	c, err := s.st.CountJobs(ctx, r.Label, r.Version, r.Ring, r.RingStartedAt)
	if err != nil {
		return in, errWrap(err, "count jobs of rollout %s in ring %d", r.ID, r.Ring)
	}
	in.Jobs = c.Succeeded + c.Failed
	if s.health != nil {
		h, err := s.health.Check(ctx, r, r.Ring)
		if err != nil {
			return in, fmt.Errorf("health of rollout %s in ring %d: %w", r.ID, r.Ring, err)
		}
		in.Health = h
		// Rollback is the analysis' default action: a verdict that asks
		// for it gets it, whatever the rollout was started with.
		in.AutoRollback = in.AutoRollback || h.Action == ActionRollback
	}
	return in, nil
}

// GetRollout returns one rollout.
func (s *Service) GetRollout(ctx context.Context, id string) (Rollout, error) {
	r, err := s.st.GetRollout(ctx, id)
	return r, errWrap(err, "rollout %s", id)
}

// ListRollouts lists rollouts of label ("" = all), newest first.
func (s *Service) ListRollouts(ctx context.Context, label string, states []State, p Page) ([]Rollout, string, error) {
	for _, st := range states {
		if !isActive(st) && !Terminal(st) {
			return nil, "", fmt.Errorf("unknown rollout state %q: %w", st, ErrInvalid)
		}
	}
	rs, next, err := s.st.ListRollouts(ctx, label, states, normPage(p))
	return rs, next, errWrap(err, "list rollouts")
}

// startReason is the rollout.start audit entry's reason: why it starts
// and, when forced, why the failed gate is overridden (one of them when
// they are the same or one is missing).
func startReason(req StartRequest) string {
	why, forced := strings.TrimSpace(req.Reason), strings.TrimSpace(req.ForceReason)
	switch {
	case forced == "" || forced == why:
		return why
	case why == "":
		return forced
	}
	return why + "; forced: " + forced
}
