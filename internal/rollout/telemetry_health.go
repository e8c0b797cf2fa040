package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/imagegate/imagegate/internal/analysis"
	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// What a failed analysis does (AnalysisPolicy.Action).
const (
	// ActionRollback rolls the image back in the tick that decided.
	ActionRollback = "rollback"
	// ActionHalt stops the rollout where it is for a person to look.
	ActionHalt = "halt"
	// ActionDryRun decides, records and alerts, but does not act: the ring
	// is gated as if the analysis were not there.
	ActionDryRun = "dry-run"
)

// AnalysisPolicy is the telemetry decision's policy for a ring; zero
// fields take the defaults (analysis.DefaultParams, ActionRollback).
type AnalysisPolicy struct {
	Params analysis.Params
	Action string
}

// AnalysisPolicies is the default policy and overrides by ring name; an
// override's zero fields keep the default's.
type AnalysisPolicies struct {
	Default AnalysisPolicy
	Rings   map[string]AnalysisPolicy
}

// For returns the policy of the ring named ring, defaults filled in.
func (p AnalysisPolicies) For(ring string) AnalysisPolicy {
	out := p.Default
	if o, ok := p.Rings[ring]; ok {
		if o.Action != "" {
			out.Action = o.Action
		}
		if o.Params.Alpha != 0 {
			out.Params.Alpha = o.Params.Alpha
		}
		if o.Params.MinOrgs != 0 {
			out.Params.MinOrgs = o.Params.MinOrgs
		}
	}
	if out.Action == "" {
		out.Action = ActionRollback
	}
	out.Params = out.Params.WithDefaults()
	return out
}

// Validate reports a policy value out of range, naming it.
func (p AnalysisPolicy) Validate() error {
	switch p.Action {
	case "", ActionRollback, ActionHalt, ActionDryRun:
	default:
		return fmt.Errorf("analysis action %q: want %s, %s or %s", p.Action, ActionRollback, ActionHalt, ActionDryRun)
	}
	if p.Params.MinOrgs > MaxTopOrgs+1 {
		return fmt.Errorf("analysis minOrgs %d: at most %d (the store names the %d most affected orgs)", p.Params.MinOrgs, MaxTopOrgs+1, MaxTopOrgs)
	}
	return p.Params.WithDefaults().Validate()
}

// AnalysisStore is what TelemetryHealth reads: a ring's aggregates, and
// the versions' snapshots for the probable cause.
type AnalysisStore interface {
	RingTelemetry(ctx context.Context, rolloutID string, stage int) (Telemetry, error)
	GetVersion(ctx context.Context, label, version string, withBlobs bool) (Version, error)
}

// TelemetryHealth is the health gate of issue 7: for the rollout's ring it
// reads the telemetry aggregates, decides with analysis.Analyze (per
// signature anytime-valid tests with e-BH, and the aggregate failure
// rate; see the analysis package for the statistics) and says why, with
// the probable cause from the diff of the two versions' snapshots.
//
// Fail is Known && !Healthy with the policy's Action; pass is healthy;
// inconclusive is !Known, which holds the ring (missing data never
// passes). Under ActionDryRun every verdict is healthy and a failing
// decision rides along in HealthResult.Decision, for the Service to
// record and alert. Safe for concurrent use; a check costs one
// RingTelemetry read, and a failing one the diff of two snapshots, once
// per rollout.
type TelemetryHealth struct {
	st     AnalysisStore
	policy AnalysisPolicies
	log    *slog.Logger

	mu     sync.Mutex
	causes map[string][]diff.Change // by rollout id; nil: no snapshots to compare
}

var (
	_ Health       = (*TelemetryHealth)(nil)
	_ RingAnalyzer = (*TelemetryHealth)(nil)
)

// NewTelemetryHealth returns the telemetry gate over st with policy; log
// may be nil. The same value serves as ServiceOptions.Health (alone or in
// AllOf) and ServiceOptions.Analyzer.
func NewTelemetryHealth(st AnalysisStore, policy AnalysisPolicies, log *slog.Logger) *TelemetryHealth {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TelemetryHealth{st: st, policy: policy, log: log, causes: map[string][]diff.Change{}}
}

// Check implements Health.
func (h *TelemetryHealth) Check(ctx context.Context, r Rollout, ring int) (HealthResult, error) {
	a, err := h.analyze(ctx, r, ring, false)
	if err != nil {
		return HealthResult{}, err
	}
	d := &a.Decision
	res := HealthResult{Reason: "telemetry: " + d.Why}
	switch d.Outcome {
	case analysis.Pass:
		res.Known, res.Healthy = true, true
	case analysis.Fail:
		res.Known, res.Action = true, a.Action
		res.Decision = h.summary(ctx, r, a)
		if c := res.Decision.ProbableCause; len(c) > 0 {
			res.Reason += "; probable cause: " + c[0].Why
		}
	}
	if a.Action == ActionDryRun {
		res.Known, res.Healthy, res.Action = true, true, ActionDryRun
		res.Reason = "dry-run, not acted on: " + res.Reason
	}
	return res, nil
}

// RingAnalysis is one ring's analysis as the API shows it.
type RingAnalysis struct {
	Ring   int    `json:"ring"`
	Name   string `json:"name"`
	Action string `json:"action"`
	// Exposure is what each side ran: New the ring on the rollout's
	// version, Old the concurrent old version (control share and the rest
	// of the fleet), both with their history.
	New analysis.Side `json:"new"`
	Old analysis.Side `json:"old"`
	// Decision holds the outcome, why, and every live signature's counts
	// and statistic.
	Decision analysis.Decision `json:"decision"`
	// Causes are the probable causes of the signatures shown, by
	// signature id (failing and eligible ones, and the first few others).
	Causes map[string][]analysis.Cause `json:"causes,omitempty"`
}

// RingAnalyzer analyses one ring of a rollout for the API.
//
// Contract: the same computation the health gate decides with, read now;
// ErrNotFound when the rollout is unknown. Safe for concurrent use.
type RingAnalyzer interface {
	AnalyzeRing(ctx context.Context, r Rollout, ring int) (RingAnalysis, error)
}

// AnalyzeRing implements RingAnalyzer.
func (h *TelemetryHealth) AnalyzeRing(ctx context.Context, r Rollout, ring int) (RingAnalysis, error) {
	return h.analyze(ctx, r, ring, true)
}

// causesShown bounds how many signatures of the API's answer get a
// probable cause besides the regressions and the eligible ones.
const causesShown = 20

func (h *TelemetryHealth) analyze(ctx context.Context, r Rollout, ring int, withCauses bool) (RingAnalysis, error) {
	if ring < 0 || ring >= len(r.Rings) {
		return RingAnalysis{}, fmt.Errorf("analysis of rollout %s: ring %d is outside its plan of %d rings: %w", r.ID, ring, len(r.Rings), ErrInvalid)
	}
	pol := h.policy.For(r.Rings[ring].Name)
	a := RingAnalysis{Ring: ring, Name: r.Rings[ring].Name, Action: pol.Action}
	t, err := h.st.RingTelemetry(ctx, r.ID, ring)
	if err != nil {
		return a, fmt.Errorf("telemetry of rollout %s in ring %d: %w", r.ID, ring, err)
	}
	in := RingInputOf(t)
	a.New, a.Old = in.New, in.Old
	if a.Decision, err = analysis.Analyze(in, pol.Params); err != nil {
		return a, fmt.Errorf("analysis of rollout %s in ring %d: %w", r.ID, ring, err)
	}
	if withCauses {
		changes := h.changes(ctx, r)
		for i, s := range a.Decision.Signatures {
			if i >= causesShown && !s.Test.Eligible {
				continue
			}
			if c := analysis.ProbableCause(s.Template, s.Examples, changes, 3); len(c) > 0 {
				if a.Causes == nil {
					a.Causes = map[string][]analysis.Cause{}
				}
				a.Causes[s.ID] = c
			}
		}
	}
	return a, nil
}

// RingInputOf maps a ring's aggregates to the analysis' input: the new
// cohort against the control and old cohorts together (their orgs are
// disjoint, so their distinct counts add up); flagged jobs count nowhere.
func RingInputOf(t Telemetry) analysis.RingInput {
	in := analysis.RingInput{Ring: t.Stage, Signatures: make([]analysis.Signature, 0, len(t.Signatures))}
	in.New = side(t.Exposure[CohortNew])
	in.Control = side(t.Exposure[CohortControl])
	in.Old = in.Control
	o := side(t.Exposure[CohortOld])
	in.Old.Pipelines += o.Pipelines
	in.Old.Jobs += o.Jobs
	in.Old.FailedJobs += o.FailedJobs
	in.Old.FailedOrgs += o.FailedOrgs
	in.Old.TopOrgFailedJobs = mergeTop(in.Old.TopOrgFailedJobs, o.TopOrgFailedJobs)
	in.Old.History.Jobs += o.History.Jobs
	in.Old.History.FailedJobs += o.History.FailedJobs
	for _, s := range t.Signatures {
		n, c, old := s.Cohorts[CohortNew], s.Cohorts[CohortControl], s.Cohorts[CohortOld]
		if n.Pipelines+c.Pipelines+old.Pipelines == 0 {
			continue // flagged only
		}
		sig := analysis.Signature{ID: s.ID, Template: s.Template, Examples: s.Examples,
			New: analysis.SignatureSide{Pipelines: n.Pipelines, Jobs: n.Jobs, Orgs: n.Orgs,
				PipelinesWithoutHistory: n.WithoutHistory, OrgsWithoutHistory: n.OrgsWithoutHistory, TopOrgs: n.TopOrgs},
			Old: analysis.SignatureSide{Pipelines: c.Pipelines + old.Pipelines, Jobs: c.Jobs + old.Jobs, Orgs: c.Orgs + old.Orgs,
				PipelinesWithoutHistory: c.WithoutHistory + old.WithoutHistory, OrgsWithoutHistory: c.OrgsWithoutHistory + old.OrgsWithoutHistory,
				TopOrgs: mergeTop(c.TopOrgs, old.TopOrgs)},
			Control: analysis.SignatureSide{Pipelines: c.Pipelines, Jobs: c.Jobs, Orgs: c.Orgs,
				PipelinesWithoutHistory: c.WithoutHistory, OrgsWithoutHistory: c.OrgsWithoutHistory, TopOrgs: c.TopOrgs},
		}
		in.Signatures = append(in.Signatures, sig)
	}
	return in
}

func side(e Exposure) analysis.Side {
	return analysis.Side{Pipelines: e.Pipelines, Jobs: e.Jobs, FailedJobs: e.Failed, FailedOrgs: e.FailedOrgs,
		TopOrgFailedJobs: e.TopOrgFailed, History: analysis.History{Jobs: e.HistoryJobs, FailedJobs: e.HistoryFailed}}
}

// mergeTop is the MaxTopOrgs largest of two largest-first lists.
func mergeTop(a, b []int64) []int64 {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := append(slices.Clone(a), b...)
	slices.SortFunc(out, func(x, y int64) int { return int(min(max(y-x, -1), 1)) })
	return out[:min(len(out), MaxTopOrgs)]
}

// DecisionSummary is what the audit entry of a halt or rollback (and of
// a dry-run's would-be one) records of the decision.
type DecisionSummary struct {
	Ring    int              `json:"ring"`
	Outcome analysis.Outcome `json:"outcome"`
	Why     string           `json:"why"`
	Action  string           `json:"action"`
	// Signature is the first signature that regressed; nil when only the
	// aggregate failure rate did.
	Signature *SignatureSummary `json:"signature,omitempty"`
	// Regressions counts the signatures that regressed; Aggregate is true
	// when the overall failure rate did.
	Regressions int  `json:"regressions"`
	Aggregate   bool `json:"aggregate"`
	// Statistic is the deciding test's log e-value, Threshold the log bar
	// it passed (log(m/(α·k*)), e-BH over Hypotheses).
	Statistic  float64 `json:"statistic"`
	Threshold  float64 `json:"threshold"`
	Hypotheses int     `json:"hypotheses"`
	Alpha      float64 `json:"alpha"`
	// ProbableCause: the diff's entries that best match the signature,
	// best first; empty when no stored snapshots could be compared.
	ProbableCause []analysis.Cause `json:"probableCause,omitempty"`
}

// SignatureSummary is a regressed signature with its counts on each side.
type SignatureSummary struct {
	ID       string        `json:"id"`
	Template string        `json:"template"`
	Examples []string      `json:"examples,omitempty"`
	New      SideCounts    `json:"new"`
	Old      SideCounts    `json:"old"`
	Test     analysis.Test `json:"test"`
}

// SideCounts are a signature's counts on one side.
type SideCounts struct {
	Pipelines int64 `json:"pipelines"`
	Orgs      int64 `json:"orgs"`
	Jobs      int64 `json:"jobs"`
}

func (h *TelemetryHealth) summary(ctx context.Context, r Rollout, a RingAnalysis) *DecisionSummary {
	d := &a.Decision
	out := &DecisionSummary{Ring: a.Ring, Outcome: d.Outcome, Why: d.Why, Action: a.Action, Aggregate: d.Aggregate.Regression,
		Hypotheses: d.Hypotheses, Alpha: d.Params.Alpha, Statistic: d.Aggregate.LogE, Threshold: d.Aggregate.LogThreshold}
	regs := d.Regressions()
	out.Regressions = len(regs)
	if len(regs) == 0 {
		return out
	}
	s := regs[0]
	out.Signature = &SignatureSummary{ID: s.ID, Template: s.Template, Examples: s.Examples[:min(len(s.Examples), 2)],
		New:  SideCounts{Pipelines: s.New.Pipelines, Orgs: s.New.Orgs, Jobs: s.New.Jobs},
		Old:  SideCounts{Pipelines: s.Old.Pipelines, Orgs: s.Old.Orgs, Jobs: s.Old.Jobs},
		Test: s.Test}
	out.Statistic, out.Threshold = s.Test.LogE, s.Test.LogThreshold
	out.ProbableCause = analysis.ProbableCause(s.Template, s.Examples, h.changes(ctx, r), 3)
	return out
}

// maxCachedDiffs bounds the per-rollout diff cache; rollouts under way
// are few, so dropping it all when full is simplest.
const maxCachedDiffs = 32

// changes returns the diff of the rollout's two versions' stored
// snapshots, computed once per rollout; nil (and a log line) when either
// has no snapshot or it cannot be read: the decision stands without a
// cause.
func (h *TelemetryHealth) changes(ctx context.Context, r Rollout) []diff.Change {
	h.mu.Lock()
	c, ok := h.causes[r.ID]
	h.mu.Unlock()
	if ok {
		return c
	}
	c, err := h.diff(ctx, r)
	if err != nil {
		h.log.Warn("probable cause: no diff of the rollout's versions", "rollout", r.ID, "label", r.Label,
			"from", r.FromVersion, "version", r.Version, "err", err)
		if ctx.Err() != nil {
			return nil // not cached: try again next time
		}
	}
	h.mu.Lock()
	if len(h.causes) >= maxCachedDiffs {
		clear(h.causes)
	}
	h.causes[r.ID] = c
	h.mu.Unlock()
	return c
}

var errNoSnapshot = errors.New("no snapshot stored")

func (h *TelemetryHealth) diff(ctx context.Context, r Rollout) ([]diff.Change, error) {
	if r.FromVersion == "" {
		return nil, nil
	}
	load := func(version string) (*snapshot.Snapshot, error) {
		v, err := h.st.GetVersion(ctx, r.Label, version, true)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(v.Snapshot)) == 0 || bytes.Equal(bytes.TrimSpace(v.Snapshot), []byte("null")) {
			return nil, fmt.Errorf("%s %s: %w (push it with --snapshot)", r.Label, version, errNoSnapshot)
		}
		s, err := snapshot.Decode(bytes.NewReader(v.Snapshot))
		if err != nil {
			return nil, fmt.Errorf("snapshot of %s %s: %w", r.Label, version, err)
		}
		return s, nil
	}
	old, err := load(r.FromVersion)
	if err != nil {
		return nil, err
	}
	cur, err := load(r.Version)
	if err != nil {
		return nil, err
	}
	return diff.Compare(old, cur, nil).Changes, nil
}

// summaryLine is one line naming a decision, for logs.
func (d *DecisionSummary) summaryLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ring %d %s", d.Ring, d.Outcome)
	if d.Signature != nil {
		fmt.Fprintf(&b, ": %q on %d pipelines (%d orgs) new vs %d old", d.Signature.Template, d.Signature.New.Pipelines,
			d.Signature.New.Orgs, d.Signature.Old.Pipelines)
	}
	if !math.IsNaN(d.Statistic) {
		fmt.Fprintf(&b, ", log e %.1f ≥ %.1f", d.Statistic, d.Threshold)
	}
	if len(d.ProbableCause) > 0 {
		fmt.Fprintf(&b, ", probable cause %s", d.ProbableCause[0].Change.ID)
	}
	return b.String()
}
