package rollout

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Clock tells the time; tests substitute one they control.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// HealthResult is a health verdict on a rollout's ring.
type HealthResult struct {
	// Healthy is meaningful only when Known. Known && !Healthy halts the
	// rollout; !Known holds it in the ring (unless a person promoted it).
	Healthy bool   `json:"healthy"`
	Known   bool   `json:"known"`
	Reason  string `json:"reason,omitempty"`
	// Action is what the gate's policy asks of an unhealthy verdict
	// (ActionRollback, ActionHalt), or ActionDryRun for a verdict that is
	// healthy only because the policy does not act; "" leaves an unhealthy
	// verdict to the rollout's AutoRollback. A rollback asked for by
	// either wins.
	Action string `json:"action,omitempty"`
	// Decision summarises a failing telemetry decision (also a dry-run's
	// would-be one) for the audit log and alerts.
	Decision *DecisionSummary `json:"decision,omitempty"`
}

// Health judges whether rollout r may leave ring. Implementations must be
// safe for concurrent use and cheap enough to run on every controller tick.
type Health interface {
	Check(ctx context.Context, r Rollout, ring int) (HealthResult, error)
}

// StartGate is what a Health may also implement to hold a pending
// rollout before its first ring (NoticeGate: ring 0's notice period).
// MayStart's verdict is Known and Healthy to start; !Known holds the
// rollout pending, Reason saying why. Same concurrency and cost rules as
// Health.
type StartGate interface {
	MayStart(ctx context.Context, r Rollout) (HealthResult, error)
}

// JobCounter is the part of Store FailureRateHealth reads.
type JobCounter interface {
	CountJobs(ctx context.Context, label, version string, ring int, since time.Time) (JobCounts, error)
}

// FailureRateHealth compares the new version's failure rate in the ring,
// since the ring started, with the previous version's over the same window
// in every ring (the concurrent baseline: control share and rings not yet
// reached). Unhealthy when the new rate exceeds the baseline by more than
// MaxFailureRate (absolute, e.g. 0.05 = five points); with fewer than
// MinJobs baseline jobs the baseline is taken as 0. Unknown while the new
// version has fewer than MinJobs finished jobs in the ring.
type FailureRateHealth struct {
	Jobs           JobCounter
	MaxFailureRate float64
	MinJobs        int
}

var _ Health = FailureRateHealth{}

// Check implements Health.
func (h FailureRateHealth) Check(ctx context.Context, r Rollout, ring int) (HealthResult, error) {
	nc, err := h.Jobs.CountJobs(ctx, r.Label, r.Version, ring, r.RingStartedAt)
	if err != nil {
		return HealthResult{}, fmt.Errorf("count jobs of %s %s in ring %d: %w", r.Label, r.Version, ring, err)
	}
	n := nc.Succeeded + nc.Failed
	if n < int64(h.MinJobs) {
		return HealthResult{Reason: fmt.Sprintf("%d of %d jobs of %s finished in ring %d", n, h.MinJobs, r.Version, ring)}, nil
	}
	newRate := rate(nc)
	base := 0.0
	if r.FromVersion != "" {
		oc, err := h.Jobs.CountJobs(ctx, r.Label, r.FromVersion, -1, r.RingStartedAt)
		if err != nil {
			return HealthResult{}, fmt.Errorf("count jobs of %s %s: %w", r.Label, r.FromVersion, err)
		}
		if oc.Succeeded+oc.Failed >= int64(h.MinJobs) {
			base = rate(oc)
		}
	}
	verdict := fmt.Sprintf("failure rate of %s in ring %d is %.1f%% (%d/%d jobs), baseline %s %.1f%%, allowed +%.1f points",
		r.Version, ring, 100*newRate, nc.Failed, n, r.FromVersion, 100*base, 100*h.MaxFailureRate)
	return HealthResult{Known: true, Healthy: newRate <= base+h.MaxFailureRate, Reason: verdict}, nil
}

func rate(c JobCounts) float64 {
	n := c.Succeeded + c.Failed
	if n == 0 {
		return 0
	}
	return float64(c.Failed) / float64(n)
}

// ManualApproval holds every ring until a person promotes the rollout out
// of it (Rollout.Approved). It never judges a rollout unhealthy.
type ManualApproval struct{}

var _ Health = ManualApproval{}

// Check implements Health.
func (ManualApproval) Check(_ context.Context, r Rollout, ring int) (HealthResult, error) {
	if r.Approved >= ring {
		return HealthResult{Known: true, Healthy: true, Reason: fmt.Sprintf("ring %d approved", ring)}, nil
	}
	return HealthResult{Reason: fmt.Sprintf("ring %d waits for approval (promote)", ring)}, nil
}

// AllOf combines health checks: unhealthy if any is unhealthy (that
// check's result, with its Action and Decision), else unknown if any is
// unknown, else healthy. Reasons are joined; the first Decision (a
// dry-run's) rides along.
type AllOf []Health

var (
	_ Health    = AllOf(nil)
	_ StartGate = AllOf(nil)
)

// MayStart implements StartGate: held while any member that is a
// StartGate holds, the reasons joined.
func (a AllOf) MayStart(ctx context.Context, r Rollout) (HealthResult, error) {
	out := HealthResult{Known: true, Healthy: true}
	var reasons []string
	for _, h := range a {
		g, ok := h.(StartGate)
		if !ok {
			continue
		}
		res, err := g.MayStart(ctx, r)
		if err != nil {
			return HealthResult{}, err
		}
		if !res.Known || !res.Healthy {
			out.Known, out.Healthy = false, false
			reasons = append(reasons, res.Reason)
		}
	}
	out.Reason = strings.Join(reasons, "; ")
	return out, nil
}

// Check implements Health.
func (a AllOf) Check(ctx context.Context, r Rollout, ring int) (HealthResult, error) {
	out := HealthResult{Known: true, Healthy: true}
	var reasons []string
	for _, h := range a {
		res, err := h.Check(ctx, r, ring)
		if err != nil {
			return HealthResult{}, err
		}
		if res.Reason != "" {
			reasons = append(reasons, res.Reason)
		}
		switch {
		case res.Known && !res.Healthy:
			return res, nil
		case !res.Known:
			out.Known, out.Healthy = false, false
		}
		if out.Decision == nil && res.Decision != nil {
			out.Decision, out.Action = res.Decision, res.Action
		}
	}
	out.Reason = strings.Join(reasons, "; ")
	return out, nil
}
