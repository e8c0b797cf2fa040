package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// PushVersion registers v (creating its image if needed). Gate comes from
// v.CheckReport (its "verdict", or "failed" count) and is "unknown"
// without a report, whatever v.Gate said. ErrConflict if it exists.
func (s *Service) PushVersion(ctx context.Context, actor string, v Version) (Version, error) {
	if err := checkName("label", v.Label); err != nil {
		return Version{}, err
	}
	if err := checkName("version", v.Version); err != nil {
		return Version{}, err
	}
	gate, err := GateOf(v.CheckReport)
	if err != nil {
		return Version{}, fmt.Errorf("push %s %s: %w", v.Label, v.Version, err)
	}
	if len(v.Snapshot) > 0 && !json.Valid(v.Snapshot) {
		return Version{}, fmt.Errorf("push %s %s: snapshot is not JSON (give the file imagegate scan wrote): %w", v.Label, v.Version, ErrInvalid)
	}
	now := s.clock.Now()
	v.Gate, v.Revoked, v.RevokedReason, v.CreatedAt = gate, false, "", now
	if err := s.st.PutImage(ctx, Image{Label: v.Label, CreatedAt: now},
		AuditEntry{Actor: actor, Action: "image.create", Subject: "image/" + v.Label}); err != nil {
		return Version{}, errWrap(err, "create image %s", v.Label)
	}
	if err := s.st.CreateVersion(ctx, v, AuditEntry{Actor: actor, Action: "version.push",
		Subject: "version/" + v.Label + "/" + v.Version, Details: details("gate", gate)}); err != nil {
		return Version{}, errWrap(err, "push %s %s (versions are immutable: push a new version)", v.Label, v.Version)
	}
	return v, s.refresh(ctx)
}

// RevokeVersion takes a version back for good: it is never served again
// (pins to it stop applying unless they override), runs lose their
// affinity to it, and a rollout of it still under way is rolled back.
func (s *Service) RevokeVersion(ctx context.Context, actor, label, version, reason string) error {
	if reason == "" {
		return fmt.Errorf("revoke %s %s: a reason is required (it is shown to everyone pinned to it): %w", label, version, ErrInvalid)
	}
	if _, err := s.st.GetVersion(ctx, label, version, false); err != nil {
		return errWrap(err, "revoke %s %s", label, version)
	}
	if err := s.st.RevokeVersion(ctx, label, version, reason, AuditEntry{Actor: actor, Action: "version.revoke",
		Subject: "version/" + label + "/" + version, Reason: reason}); err != nil {
		return errWrap(err, "revoke %s %s", label, version)
	}
	active, err := s.activeRollouts(ctx, label)
	if err != nil {
		return err
	}
	for _, r := range active {
		if r.Version != version {
			continue
		}
		if _, err := s.transition(ctx, actor, r.ID, "rollout.rollback", "version revoked: "+reason, func(r *Rollout) error {
			if Terminal(r.State) {
				return errNoChange
			}
			r.State = StateRolledBack
			return nil
		}); err != nil && !errors.Is(err, errNoChange) {
			return err
		}
	}
	if err := s.st.ForgetRuns(ctx, label); err != nil {
		return errWrap(err, "forget runs of %s after revoking %s", label, version)
	}
	return s.refresh(ctx)
}

// SetRings replaces the ring plan of label ("" = the global plan). Running
// rollouts keep the plan they started with.
func (s *Service) SetRings(ctx context.Context, actor, label string, rings []Ring) error {
	if label != "" {
		if err := checkName("label", label); err != nil {
			return err
		}
	}
	if err := ValidateRings(rings); err != nil {
		return err
	}
	subject := "rings/" + label
	if label == "" {
		subject = "rings/global"
	}
	if err := s.st.PutRings(ctx, label, rings, AuditEntry{Actor: actor, Action: "rings.set", Subject: subject, Details: details("rings", rings)}); err != nil {
		return errWrap(err, "set rings of %q", label)
	}
	return s.refresh(ctx)
}

// lastGood is the newest completed version of label that is not revoked.
func (s *Service) lastGood(ctx context.Context, label string) (string, error) {
	var out string
	var ferr error
	err := each(ctx, func(p Page) ([]Rollout, string, error) {
		return s.st.ListRollouts(ctx, label, []string{StateCompleted}, p)
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
	v, err := s.st.GetVersion(ctx, req.Label, req.Version, false)
	if err != nil {
		return Rollout{}, errWrap(err, "start rollout of %s %s (push the version first)", req.Label, req.Version)
	}
	switch {
	case v.Revoked:
		return Rollout{}, fmt.Errorf("start rollout of %s %s: the version is revoked (%s): %w", req.Label, req.Version, v.RevokedReason, ErrPrecondition)
	case req.Force && req.ForceReason == "":
		return Rollout{}, fmt.Errorf("start rollout of %s %s: force needs a reason for the audit log: %w", req.Label, req.Version, ErrInvalid)
	case v.Gate == GateFail && !req.Force:
		return Rollout{}, fmt.Errorf("start rollout of %s %s: its check gate failed; fix the image or force with a reason: %w", req.Label, req.Version, ErrPrecondition)
	}
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
		reason := req.ForceReason
		err = s.st.CreateRollout(ctx, &r, sup, AuditEntry{Actor: actor, Action: "rollout.start", Subject: "rollout/" + r.ID,
			Reason: reason, Details: details("version", r.Version, "from", from, "expedited", r.Expedited, "supersedes", r.Supersedes, "forced", r.Forced,
				"autoRollback", r.AutoRollback, "state", r.State)})
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

func precondition(r *Rollout, verb string, allowed ...string) error {
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
	if next.State == StateRolledBack {
		if err := s.st.ForgetRuns(ctx, r.Label); err != nil {
			return next, "", errWrap(err, "forget runs of %s", r.Label)
		}
	}
	return next, why, s.refresh(ctx)
}

func (s *Service) gateInput(ctx context.Context, r Rollout) (GateInput, error) {
	in := GateInput{Now: s.clock.Now(), Health: HealthResult{Known: true, Healthy: true}}
	// The stored choice, so it holds after a restart and on whichever
	// replica runs the controller. The service-wide policy still covers
	// rollouts stored without it (started before the policy was turned on,
	// or before rollouts kept the choice).
	in.AutoRollback = r.AutoRollback || s.opts.AutoRollback
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
	}
	return in, nil
}

// GetRollout returns one rollout.
func (s *Service) GetRollout(ctx context.Context, id string) (Rollout, error) {
	r, err := s.st.GetRollout(ctx, id)
	return r, errWrap(err, "rollout %s", id)
}

// ListRollouts lists rollouts of label ("" = all), newest first.
func (s *Service) ListRollouts(ctx context.Context, label string, states []string, p Page) ([]Rollout, string, error) {
	for _, st := range states {
		if !isActive(st) && !Terminal(st) {
			return nil, "", fmt.Errorf("unknown rollout state %q: %w", st, ErrInvalid)
		}
	}
	rs, next, err := s.st.ListRollouts(ctx, label, states, normPage(p))
	return rs, next, errWrap(err, "list rollouts")
}

// SetPin pins org's label to a version until pin.ExpiresAt (required, in
// the future). A revoked version is refused (ErrPrecondition) unless
// OverrideRevoked with a Reason. Owner defaults to actor.
func (s *Service) SetPin(ctx context.Context, actor string, pin Pin) (Pin, error) {
	for _, c := range [][2]string{{"org", pin.Org}, {"label", pin.Label}, {"version", pin.Version}} {
		if err := checkName(c[0], c[1]); err != nil {
			return Pin{}, fmt.Errorf("pin: %w", err)
		}
	}
	now := s.clock.Now()
	switch {
	case pin.Reason == "":
		return Pin{}, fmt.Errorf("pin %s %s: a reason is required: %w", pin.Org, pin.Label, ErrInvalid)
	case pin.ExpiresAt.IsZero():
		return Pin{}, fmt.Errorf("pin %s %s: an expiry is required (pins are temporary): %w", pin.Org, pin.Label, ErrInvalid)
	case !pin.ExpiresAt.After(now):
		return Pin{}, fmt.Errorf("pin %s %s: expiry %s is not in the future: %w", pin.Org, pin.Label, pin.ExpiresAt.Format(time.RFC3339), ErrInvalid)
	}
	v, err := s.st.GetVersion(ctx, pin.Label, pin.Version, false)
	if err != nil {
		return Pin{}, errWrap(err, "pin %s to %s %s", pin.Org, pin.Label, pin.Version)
	}
	if v.Revoked && !pin.OverrideRevoked {
		return Pin{}, fmt.Errorf("pin %s to %s %s: the version is revoked (%s); pin another version, or override the revocation with a reason: %w",
			pin.Org, pin.Label, pin.Version, v.RevokedReason, ErrPrecondition)
	}
	if !v.Revoked {
		pin.OverrideRevoked = false
	}
	if pin.Owner == "" {
		pin.Owner = actor
	}
	pin.CreatedBy, pin.CreatedAt = actor, now
	if err := s.st.PutPin(ctx, pin, AuditEntry{Actor: actor, Action: "pin.set", Subject: "pin/" + pin.Org + "/" + pin.Label, Reason: pin.Reason,
		Details: details("version", pin.Version, "expiresAt", pin.ExpiresAt, "owner", pin.Owner, "overrideRevoked", pin.OverrideRevoked)}); err != nil {
		return Pin{}, errWrap(err, "pin %s %s", pin.Org, pin.Label)
	}
	return pin, s.refresh(ctx)
}

// ClearPin removes org's pin of label; ErrNotFound when there is none.
func (s *Service) ClearPin(ctx context.Context, actor, org, label string) error {
	if err := s.st.DeletePin(ctx, org, label, AuditEntry{Actor: actor, Action: "pin.clear", Subject: "pin/" + org + "/" + label}); err != nil {
		return errWrap(err, "clear pin of %s %s", org, label)
	}
	return s.refresh(ctx)
}

// ListPins lists pins (filtered by org and/or label), expired ones
// included and flagged.
func (s *Service) ListPins(ctx context.Context, org, label string, p Page) ([]PinView, string, error) {
	now := s.clock.Now()
	pins, next, err := s.st.ListPins(ctx, org, label, true, now, normPage(p))
	if err != nil {
		return nil, "", errWrap(err, "list pins")
	}
	out := make([]PinView, len(pins))
	for i, pin := range pins {
		out[i] = PinView{Pin: pin, Expired: !now.Before(pin.ExpiresAt)}
		out[i].ExpiresSoon = !out[i].Expired && pin.ExpiresAt.Sub(now) <= s.opts.PinExpiryWarning
	}
	return out, next, nil
}

// MaxEventBatch bounds one IngestEvents call.
const MaxEventBatch = 10_000

// IngestEvents validates a batch of job events and stores it durably;
// events already stored (same JobID) are ignored. Returns how many were
// new. One invalid event rejects the batch (ErrInvalid), naming it.
// The server decides what each event means (see ingestEvents).
func (s *Service) IngestEvents(ctx context.Context, events []JobEvent) (int, error) {
	return s.ingestEvents(ctx, events)
}

func checkEvent(e JobEvent) error {
	for _, c := range [][2]string{{"jobId", e.JobID}, {"org", e.Org}, {"label", e.Label}, {"version", e.Version}} {
		if c[1] == "" {
			return fmt.Errorf("%s is required: %w", c[0], ErrInvalid)
		}
	}
	switch {
	case e.Outcome != OutcomeSucceeded && e.Outcome != OutcomeFailed && e.Outcome != OutcomeCanceled:
		return fmt.Errorf("outcome %q is not succeeded, failed or canceled: %w", e.Outcome, ErrInvalid)
	case e.StartedAt.IsZero():
		return fmt.Errorf("startedAt is required: %w", ErrInvalid)
	case e.DurationMs < 0:
		return fmt.Errorf("durationMs %d is negative: %w", e.DurationMs, ErrInvalid)
	case e.Ring < -1:
		return fmt.Errorf("ring %d: use the ring from the resolve answer (-1 when none): %w", e.Ring, ErrInvalid)
	}
	return nil
}

// Audit lists audit entries, newest first.
func (s *Service) Audit(ctx context.Context, f AuditFilter, p Page) ([]AuditEntry, string, error) {
	es, next, err := s.st.ListAudit(ctx, f, normPage(p))
	return es, next, errWrap(err, "list audit log")
}

// Images lists registered images.
func (s *Service) Images(ctx context.Context, p Page) ([]Image, string, error) {
	is, next, err := s.st.ListImages(ctx, normPage(p))
	return is, next, errWrap(err, "list images")
}

// Versions lists label's versions, newest first, without blobs.
func (s *Service) Versions(ctx context.Context, label string, p Page) ([]Version, string, error) {
	vs, next, err := s.st.ListVersions(ctx, label, normPage(p))
	return vs, next, errWrap(err, "list versions of %s", label)
}

// Version returns one version with its snapshot and check report.
func (s *Service) Version(ctx context.Context, label, version string) (Version, error) {
	v, err := s.st.GetVersion(ctx, label, version, true)
	return v, errWrap(err, "version %s %s", label, version)
}

// RingStatus is one ring of a rollout as intended and as observed.
type RingStatus struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	Intended string `json:"intended"`
	// Control is the version the ring's control share gets, when it has
	// one now.
	Control string `json:"control,omitempty"`
	// Served counts resolves answered per version in this ring since the
	// rollout started.
	Served map[string]int64 `json:"served"`
}

// LabelStatus is what a label serves: intended and observed.
type LabelStatus struct {
	Label string `json:"label"`
	// Default is the last completed version that is not revoked.
	Default string `json:"default"`
	// Rollout is the active rollout, else the newest one; nil when none.
	Rollout *Rollout     `json:"rollout,omitempty"`
	Rings   []RingStatus `json:"rings,omitempty"`
	// Waiting says why the controller holds an active rollout where it is.
	Waiting string `json:"waiting,omitempty"`
	// OldServed counts resolves not by pin that returned the rollout's
	// FromVersion since ObservedSince (whole minutes after completion,
	// once counts of before completion are flushed).
	OldServed     int64     `json:"oldServed"`
	ObservedSince time.Time `json:"observedSince,omitzero"`
	// FullyServed: the rollout completed and no one but pinned orgs has
	// been given the old version since ObservedSince.
	FullyServed bool `json:"fullyServed"`
}

// Status reports label's current rollout: per ring the intended version
// and the versions actually served since the rollout started (this
// replica's counts flushed first).
func (s *Service) Status(ctx context.Context, label string) (LabelStatus, error) {
	if err := s.Flush(ctx); err != nil {
		return LabelStatus{}, err
	}
	if err := s.refresh(ctx); err != nil {
		return LabelStatus{}, err
	}
	rt := s.table.Load().routes[label]
	if rt == nil {
		return LabelStatus{}, fmt.Errorf("status: image %q is not registered: %w", label, ErrNotFound)
	}
	st := LabelStatus{Label: label, Default: rt.Default}
	var r Rollout
	if rt.Active != nil {
		r = *rt.Active
	} else {
		rs, _, err := s.st.ListRollouts(ctx, label, nil, Page{Limit: 1})
		if err != nil {
			return st, errWrap(err, "status of %s", label)
		}
		if len(rs) == 0 {
			return st, nil
		}
		r = rs[0]
	}
	st.Rollout = &r
	served, err := s.st.ServedSince(ctx, label, r.CreatedAt.UTC().Truncate(time.Minute))
	if err != nil {
		return st, errWrap(err, "served counts of %s", label)
	}
	for i, ring := range r.Rings {
		rs := RingStatus{Index: i, Name: ring.Name, Served: map[string]int64{}}
		switch {
		case r.State == StateCompleted || (isActive(r.State) && r.State != StatePending && i < r.Ring):
			rs.Intended = r.Version
		case isActive(r.State) && r.State != StatePending && i == r.Ring:
			rs.Intended = r.Version
			if ring.ControlPercent > 0 {
				rs.Control = rt.oldVersion(&r)
			}
		default:
			rs.Intended = rt.Default
		}
		for _, sv := range served {
			if sv.Ring == i {
				rs.Served[sv.Version] += sv.Count
			}
		}
		st.Rings = append(st.Rings, rs)
	}
	if isActive(r.State) {
		in, err := s.gateInput(ctx, r)
		if err != nil {
			return st, err
		}
		if _, action, why := Step(r, in); action == "" {
			st.Waiting = why
		} else {
			st.Waiting = "due: " + why
		}
	}
	if r.State == StateCompleted && r.FromVersion != "" {
		st.ObservedSince = r.UpdatedAt.UTC().Add(s.opts.FlushInterval).Truncate(time.Minute).Add(time.Minute)
		since, err := s.st.ServedSince(ctx, label, st.ObservedSince)
		if err != nil {
			return st, errWrap(err, "served counts of %s", label)
		}
		for _, sv := range since {
			if sv.Version == r.FromVersion && sv.Reason != "pin" {
				st.OldServed += sv.Count
			}
		}
		st.FullyServed = st.OldServed == 0 && !s.clock.Now().Before(st.ObservedSince)
	}
	return st, nil
}
