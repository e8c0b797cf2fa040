package analysis

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Params are the decision's knobs; the zero value of a field means its
// default (DefaultParams).
type Params struct {
	// Alpha bounds the probability that a ring with no regression is ever
	// failed, however often it is checked (default 0.001).
	Alpha float64 `json:"alpha"`
	// MinOrgs is how many distinct orgs a regression must affect on the new
	// side (default 3).
	MinOrgs int `json:"minOrgs"`
	// K is the concentration of the mixture prior Beta(Kρ, K(1−ρ))
	// (default 1): smaller detects large shifts sooner, larger detects
	// small shifts sooner.
	K float64 `json:"k"`
	// MinExpectedEvents and DetectShare define enough exposure to pass: a
	// signature on DetectShare of the ring's new-side pipelines would have
	// produced MinExpectedEvents events (defaults 10 and 0.02).
	MinExpectedEvents float64 `json:"minExpectedEvents"`
	DetectShare       float64 `json:"detectShare"`
	// MinHistoryJobs is how many history jobs each side needs before the
	// ratio of their historical failure rates adjusts the null share
	// (default 1000).
	MinHistoryJobs int64 `json:"minHistoryJobs"`
	// MinControlEvents is how many evidence pipelines a signature needs in
	// the ring's control share before its rate there adjusts that
	// signature's null share (default 3).
	MinControlEvents int64 `json:"minControlEvents"`
}

// DefaultParams returns the defaults of every parameter.
func DefaultParams() Params {
	return Params{Alpha: 0.001, MinOrgs: 3, K: 1, MinExpectedEvents: 10, DetectShare: 0.02, MinHistoryJobs: 1000, MinControlEvents: 3}
}

// WithDefaults returns p with each zero field set to its default.
func (p Params) WithDefaults() Params {
	d := DefaultParams()
	p.Alpha = cmp.Or(p.Alpha, d.Alpha)
	p.MinOrgs = cmp.Or(p.MinOrgs, d.MinOrgs)
	p.K = cmp.Or(p.K, d.K)
	p.MinExpectedEvents = cmp.Or(p.MinExpectedEvents, d.MinExpectedEvents)
	p.DetectShare = cmp.Or(p.DetectShare, d.DetectShare)
	p.MinHistoryJobs = cmp.Or(p.MinHistoryJobs, d.MinHistoryJobs)
	p.MinControlEvents = cmp.Or(p.MinControlEvents, d.MinControlEvents)
	return p
}

// Validate reports a parameter out of its range.
func (p Params) Validate() error {
	switch {
	case !(p.Alpha > 0 && p.Alpha < 1):
		return fmt.Errorf("analysis alpha %v: must be between 0 and 1, e.g. 0.001", p.Alpha)
	case p.MinOrgs < 1:
		return fmt.Errorf("analysis minOrgs %d: must be at least 1", p.MinOrgs)
	case !(p.K > 0) || math.IsInf(p.K, 0):
		return fmt.Errorf("analysis k %v: must be a positive number", p.K)
	case !(p.MinExpectedEvents > 0) || math.IsInf(p.MinExpectedEvents, 0):
		return fmt.Errorf("analysis minExpectedEvents %v: must be positive", p.MinExpectedEvents)
	case !(p.DetectShare > 0 && p.DetectShare <= 1):
		return fmt.Errorf("analysis detectShare %v: must be in (0, 1]", p.DetectShare)
	case p.MinHistoryJobs < 0:
		return fmt.Errorf("analysis minHistoryJobs %d: must not be negative", p.MinHistoryJobs)
	case p.MinControlEvents < 0:
		return fmt.Errorf("analysis minControlEvents %d: must not be negative", p.MinControlEvents)
	}
	return nil
}

// RingInput is what one ring's check reads: the exposure of each side over
// the same window and the signatures seen in it. New is the ring's
// pipelines on the rollout's version; Old is the concurrent old version
// (the ring's control share and the rest of the fleet on it).
type RingInput struct {
	Ring int  `json:"ring"`
	New  Side `json:"new"`
	Old  Side `json:"old"`
	// Control is the part of Old that is the ring's own control share:
	// orgs of the ring kept on the old version, drawn from the same
	// population as New (zero when the ring has none).
	Control    Side        `json:"control"`
	Signatures []Signature `json:"signatures"`
}

// Side is one side's exposure in the window.
type Side struct {
	// Pipelines counts distinct pipelines with at least one finished job.
	Pipelines int64 `json:"pipelines"`
	// Jobs and FailedJobs count finished jobs; FailedOrgs counts distinct
	// orgs with at least one failed job.
	Jobs       int64 `json:"jobs"`
	FailedJobs int64 `json:"failedJobs"`
	FailedOrgs int64 `json:"failedOrgs"`
	// TopOrgFailedJobs holds the failed jobs of the orgs with the most of
	// them, largest first; at least MinOrgs−1 entries when the side has that
	// many failing orgs (fewer are taken as the whole list). The aggregate
	// test leaves them out, so that one org's retry storm cannot decide it.
	TopOrgFailedJobs []int64 `json:"topOrgFailedJobs,omitempty"`
	// History is the same pipelines on the old version before the rollout
	// started.
	History History `json:"history"`
}

// History counts a side's pipelines' jobs before the rollout started.
type History struct {
	Jobs       int64 `json:"jobs"`
	FailedJobs int64 `json:"failedJobs"`
}

// Signature is one error signature's counts on both sides in the window.
type Signature struct {
	ID       string        `json:"id"`
	Template string        `json:"template"`
	Examples []string      `json:"examples,omitempty"`
	New      SignatureSide `json:"new"`
	Old      SignatureSide `json:"old"`
	// Control is the part of Old in the ring's control share.
	Control SignatureSide `json:"control"`
}

// SignatureSide counts one signature on one side.
type SignatureSide struct {
	// Pipelines, Jobs and Orgs count the distinct pipelines, the failed jobs
	// and the distinct orgs that produced the signature in the window.
	Pipelines int64 `json:"pipelines"`
	Jobs      int64 `json:"jobs"`
	Orgs      int64 `json:"orgs"`
	// PipelinesWithoutHistory counts those of Pipelines that had not
	// produced the signature on the old version before the rollout started:
	// the evidence. OrgsWithoutHistory counts their distinct orgs (what
	// MinOrgs counts).
	PipelinesWithoutHistory int64 `json:"pipelinesWithoutHistory"`
	OrgsWithoutHistory      int64 `json:"orgsWithoutHistory"`
	// TopOrgs holds the evidence pipelines of the most affected orgs,
	// largest first, at least MinOrgs−1 entries when known; the test must
	// stay significant without them. Only the new side's is read.
	TopOrgs []int64 `json:"topOrgs,omitempty"`
}

// Outcome is a ring's verdict.
type Outcome string

// Outcomes.
const (
	// Pass: enough exposure and no regression; the ring may be left.
	Pass Outcome = "pass"
	// Fail: a regression; roll back or halt.
	Fail Outcome = "fail"
	// Inconclusive: not enough data either way; hold the ring.
	Inconclusive Outcome = "inconclusive"
)

// Test is one sequential test's statistics at this check.
type Test struct {
	// ExposureShare is the new side's share of exposure (for a signature
	// the larger of its shares of pipelines and of jobs, for the aggregate
	// its share of jobs); Rho is the null share used, after the cohort
	// adjustment (≥ ExposureShare).
	ExposureShare float64 `json:"exposureShare"`
	Rho           float64 `json:"rho"`
	// ControlRatio is a signature's λ from the ring's control share (its
	// evidence rate there over the old side's), when it has enough events
	// there and it raised Rho beyond the cohort ratio; else 0.
	ControlRatio float64 `json:"controlRatio,omitempty"`
	// NewEvents of Events fell on the new side; NewShare is their ratio.
	NewEvents int64   `json:"newEvents"`
	Events    int64   `json:"events"`
	NewShare  float64 `json:"newShare"`
	// Orgs is the number of distinct orgs on the new side behind NewEvents.
	Orgs int64 `json:"orgs"`
	// LogBF is the log Bayes factor on all events; LogBFWithoutTopOrgs the
	// same without the MinOrgs−1 most affected orgs; LogBFOrgsOnce (for a
	// signature) the same with each org's evidence counted once, i.e. the
	// new side's events replaced by its distinct orgs. Eligible is false
	// when the new side's share is no more than Rho, too few orgs are
	// behind it, or neither robust count still shows it more frequent on
	// the new side; then e-BH takes the e-value as 0. Otherwise LogE, the
	// smaller of LogBF and the larger robust statistic, is the log e-value
	// e-BH uses.
	LogBF               float64 `json:"logBF"`
	LogBFWithoutTopOrgs float64 `json:"logBFWithoutTopOrgs"`
	LogBFOrgsOnce       float64 `json:"logBFOrgsOnce"`
	Eligible            bool    `json:"eligible"`
	LogE                float64 `json:"logE"`
	// LogThreshold is log(m/(α·max(k*,1))), the bar this check applied.
	LogThreshold float64 `json:"logThreshold"`
	// Regression is true when e-BH rejected this hypothesis.
	Regression bool   `json:"regression"`
	Why        string `json:"why"`
}

// SignatureResult is one signature's counts and test.
type SignatureResult struct {
	ID       string        `json:"id"`
	Template string        `json:"template"`
	Examples []string      `json:"examples,omitempty"`
	New      SignatureSide `json:"new"`
	Old      SignatureSide `json:"old"`
	// Control is the part of Old in the ring's control share.
	Control SignatureSide `json:"control"`
	Test    Test          `json:"test"`
}

// Decision is the verdict on one ring with its reasons and statistics.
type Decision struct {
	Ring    int     `json:"ring"`
	Outcome Outcome `json:"outcome"`
	// Why says in a sentence or two what decided the outcome.
	Why string `json:"why"`
	// ExpectedEvents is DetectShare × the new side's pipelines: how often a
	// signature on DetectShare of them would have been seen.
	ExpectedEvents float64 `json:"expectedEvents"`
	// CohortRatio is λ, the new side's historical failure rate over the old
	// side's (1 when history is too thin to say).
	CohortRatio float64 `json:"cohortRatio"`
	// Hypotheses is m: live signatures (at least one event) plus the
	// aggregate test; Rejected is e-BH's k*.
	Hypotheses int  `json:"hypotheses"`
	Rejected   int  `json:"rejected"`
	Aggregate  Test `json:"aggregate"`
	// Signatures holds every live signature, regressions first, then by
	// LogBF, largest first.
	Signatures []SignatureResult `json:"signatures"`
	Params     Params            `json:"params"`
}

// Regressions returns the signatures found to regress.
func (d *Decision) Regressions() []SignatureResult {
	var out []SignatureResult
	for _, s := range d.Signatures {
		if s.Test.Regression {
			out = append(out, s)
		}
	}
	return out
}

// ErrInvalidInput is wrapped by Analyze's errors about counts that cannot
// be (negative, or more evidence than exposure): a caller's bug, not data.
var ErrInvalidInput = errors.New("invalid analysis input")

// Analyze decides one ring. Zero fields of p take their defaults. It errs
// only on parameters out of range or impossible counts; thin or missing
// data is an Inconclusive decision. The same input always gives the same
// decision.
func Analyze(in RingInput, p Params) (Decision, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return Decision{}, err
	}
	if err := in.validate(); err != nil {
		return Decision{}, fmt.Errorf("ring %d: %w", in.Ring, err)
	}
	d := Decision{Ring: in.Ring, Params: p, CohortRatio: cohortRatio(in.New.History, in.Old.History, p.MinHistoryJobs),
		ExpectedEvents: p.DetectShare * float64(in.New.Pipelines), Signatures: []SignatureResult{}}
	switch {
	case in.New.Pipelines == 0:
		d.Outcome = Inconclusive
		d.Why = fmt.Sprintf("no pipeline has run the new version in ring %d yet", in.Ring)
		return d, nil
	case in.Old.Pipelines == 0:
		d.Outcome = Inconclusive
		d.Why = fmt.Sprintf("no pipeline ran the old version over the same window: ring %d has nothing to be compared with", in.Ring)
		return d, nil
	}

	// A signature's null share is the new side's share of pipelines or of
	// jobs, whichever is larger: a common signature saturates the pipelines
	// it can strike and splits like them, a rare one strikes a pipeline in
	// proportion to the jobs it runs, so a side whose pipelines each run
	// more jobs (Ring 0's busy orgs) shows more of every rare signature
	// without anything having changed.
	rhoJobs := share(in.New.Jobs, in.Old.Jobs)
	rhoPipes := max(share(in.New.Pipelines, in.Old.Pipelines), rhoJobs)
	rhoSig := adjust(rhoPipes, d.CohortRatio)
	minus := p.MinOrgs - 1
	d.Signatures = make([]SignatureResult, 0, len(in.Signatures))
	logE := make([]float64, 0, len(in.Signatures)+1)
	for _, s := range in.Signatures {
		y := s.New.PipelinesWithoutHistory
		n := y + s.Old.PipelinesWithoutHistory
		if n == 0 {
			continue
		}
		rho, lc := rhoSig, controlRatio(s, in, p)
		if lc > d.CohortRatio {
			rho = adjust(rhoPipes, lc)
		} else {
			lc = 0
		}
		t := test(y, n, s.New.OrgsWithoutHistory, rhoPipes, rho, topSum(s.New.TopOrgs, minus), true, p)
		t.ControlRatio = lc
		d.Signatures = append(d.Signatures, SignatureResult{ID: s.ID, Template: s.Template, Examples: s.Examples, New: s.New, Old: s.Old, Control: s.Control, Test: t})
		if t.Eligible {
			logE = append(logE, t.LogE)
		}
	}
	agg := Test{ExposureShare: rhoJobs}
	if in.New.Jobs > 0 && in.Old.Jobs > 0 {
		agg = test(in.New.FailedJobs, in.New.FailedJobs+in.Old.FailedJobs, in.New.FailedOrgs, rhoJobs, adjust(rhoJobs, d.CohortRatio),
			topSum(in.New.TopOrgFailedJobs, minus), false, p)
	}
	if agg.Eligible {
		logE = append(logE, agg.LogE)
	}

	d.Hypotheses = len(d.Signatures) + 1
	d.Rejected = ebh(logE, d.Hypotheses, p.Alpha)
	lt := logThreshold(d.Hypotheses, max(d.Rejected, 1), p.Alpha)
	// e-BH rejects the k* largest e-values, i.e. every one at or above the
	// k*-th largest, which is at or above lt.
	mark := func(t *Test) {
		t.LogThreshold = lt
		t.Regression = d.Rejected > 0 && t.Eligible && t.LogE >= lt
		t.Why = t.explain(p)
	}
	mark(&agg)
	d.Aggregate = agg
	for i := range d.Signatures {
		mark(&d.Signatures[i].Test)
	}
	d.Signatures = sortResults(d.Signatures)
	d.Outcome, d.Why = d.verdict(in)
	return d, nil
}

// sortResults orders regressions first, then by LogBF, largest first, then
// by ID and input order: through an index, since the results are large to
// move.
func sortResults(rs []SignatureResult) []SignatureResult {
	idx := make([]int, len(rs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		a, b := &rs[i].Test, &rs[j].Test
		if a.Regression != b.Regression {
			if a.Regression {
				return -1
			}
			return 1
		}
		return cmp.Or(-cmpFloat(a.LogBF, b.LogBF), cmp.Compare(rs[i].ID, rs[j].ID), cmp.Compare(i, j))
	})
	out := make([]SignatureResult, len(rs))
	for k, i := range idx {
		out[k] = rs[i]
	}
	return out
}

func (d *Decision) verdict(in RingInput) (Outcome, string) {
	p := d.Params
	if regs := d.Regressions(); len(regs) > 0 {
		s := regs[0]
		why := fmt.Sprintf("signature %s %q regressed in ring %d: %d pipelines in %d orgs on the new version, %d on the old, where its share of exposure predicts %.0f%% on the new side (log BF %.1f ≥ %.1f)",
			s.ID, s.Template, d.Ring, s.Test.NewEvents, s.Test.Orgs, s.Test.Events-s.Test.NewEvents, 100*s.Test.Rho, s.Test.LogBF, s.Test.LogThreshold)
		if len(regs) > 1 {
			why += fmt.Sprintf("; %d more signatures regressed", len(regs)-1)
		}
		if d.Aggregate.Regression {
			why += "; the overall failure rate regressed too"
		}
		return Fail, why
	}
	if d.Aggregate.Regression {
		return Fail, fmt.Sprintf("the failure rate of the new version regressed in ring %d: %s", d.Ring, d.Aggregate.Why)
	}
	if d.ExpectedEvents < p.MinExpectedEvents {
		need := int64(math.Ceil(p.MinExpectedEvents / p.DetectShare))
		return Inconclusive, fmt.Sprintf("no regression yet, but %d of the %d pipelines needed have run the new version in ring %d (a signature on %.0f%% of them would have been seen %.1f times, %.0f needed)",
			in.New.Pipelines, need, d.Ring, 100*p.DetectShare, d.ExpectedEvents, p.MinExpectedEvents)
	}
	return Pass, fmt.Sprintf("no regression among %d live signatures and the failure rate in ring %d, with %d pipelines on the new version (a signature on %.0f%% of them would have been seen %.0f times)",
		len(d.Signatures), d.Ring, in.New.Pipelines, 100*p.DetectShare, d.ExpectedEvents)
}

// test runs one sequential test; LogThreshold, Regression and Why are set
// once e-BH has run. top is the evidence of the MinOrgs−1 most affected
// orgs; orgsOnce adds the count with each org once, for signatures, whose
// events are pipelines (for the aggregate, failed jobs, it means nothing).
//
// Both robust counts ask the same question — does the excess stand
// without what a couple of orgs contribute? — and fail in opposite
// cases: leaving out the top orgs costs most when the evidence is spread
// one pipeline per org (a break in five orgs keeps three events), counting
// orgs once costs most when a few orgs carry many pipelines each. The
// larger of the two is taken: one org with fifty pipelines counts once
// under the second and not at all under the first, so neither lets a
// couple of orgs decide. Either is at most LogBF (LogE takes the minimum),
// so the e-value, and with it Ville's bound, is that of the plain test.
func test(y, n, orgs int64, exposure, rho float64, top int64, orgsOnce bool, p Params) Test {
	t := Test{ExposureShare: exposure, Rho: rho, NewEvents: y, Events: n, Orgs: orgs}
	if n > 0 {
		t.NewShare = float64(y) / float64(n)
	}
	t.LogBF = LogBF(y, n, rho, p.K)
	top = min(top, y)
	t.LogBFWithoutTopOrgs = LogBF(y-top, n-top, rho, p.K)
	robust, worse := math.Inf(-1), false
	if float64(y-top) > rho*float64(n-top) {
		robust, worse = t.LogBFWithoutTopOrgs, true
	}
	if orgsOnce {
		once := min(orgs, y)
		t.LogBFOrgsOnce = LogBF(once, n-(y-once), rho, p.K)
		if float64(once) > rho*float64(n-(y-once)) {
			robust, worse = max(robust, t.LogBFOrgsOnce), true
		}
	}
	if t.NewShare > rho && orgs >= int64(p.MinOrgs) && worse {
		t.Eligible = true
		t.LogE = min(t.LogBF, robust)
	}
	return t
}

// explain says why in words; the common cases, met by thousands of
// signatures on every tick, are constant strings.
func (t *Test) explain(p Params) string {
	switch {
	case t.Events == 0:
		return "no events"
	case t.NewShare <= t.Rho:
		return "no more frequent on the new side than its share of exposure: not a regression"
	case t.Orgs < int64(p.MinOrgs):
		return "more frequent on the new side, but in fewer orgs than a regression needs"
	case !t.Eligible:
		return "more frequent on the new side, but neither without its most affected orgs nor with each org counted once"
	case t.Regression:
		return fmt.Sprintf("new side has %.1f%% of %d events against a %.1f%% share, in %d orgs: log BF %.2f ≥ %.2f",
			100*t.NewShare, t.Events, 100*t.Rho, t.Orgs, t.LogE, t.LogThreshold)
	}
	return fmt.Sprintf("new side has %.1f%% of %d events against a %.1f%% share: log BF %.2f < %.2f, not significant yet",
		100*t.NewShare, t.Events, 100*t.Rho, t.LogE, t.LogThreshold)
}

func share(a, b int64) float64 {
	if a+b == 0 {
		return 0
	}
	return float64(a) / float64(a+b)
}

// cohortRatio is λ = r_new/r_old from the two sides' history, 1 when either
// holds fewer than minJobs jobs or the old side never failed.
func cohortRatio(n, o History, minJobs int64) float64 {
	if n.Jobs < max(minJobs, 1) || o.Jobs < max(minJobs, 1) || o.FailedJobs == 0 {
		return 1
	}
	return (float64(n.FailedJobs) / float64(n.Jobs)) / (float64(o.FailedJobs) / float64(o.Jobs))
}

// controlRatio is signature s's own cohort ratio, read from the ring's
// control share: its rate there over the whole old side's, 0 when the
// control share has fewer than MinControlEvents of it. The control share
// is a sample of the ring's orgs, so under no regression the new side
// strikes s at the control's rate; a signature Ring 0's own pipelines
// produce more than the fleet does (their own flaky tests, a stack the
// fleet uses less) would otherwise look like a regression once enough of
// it piled up, however long the ring baked. The rate is read twice, as
// evidence pipelines per exposed pipeline and as failed jobs per job, and
// the larger ratio wins: a small control share holds few pipelines new to
// s (a pipeline that had it in history is not evidence) long before it
// holds few of its jobs, and an estimate on the low side would give back
// what the adjustment takes. For the same reason each count is raised by
// its standard error (√y) before the ratio. A signature the old version
// never produced has no control events, so a broken feature keeps the
// cohort ratio and all of its power.
func controlRatio(s Signature, in RingInput, p Params) float64 {
	min := max(p.MinControlEvents, 1)
	ratio := func(yc, nc, yo, no int64) float64 {
		if yc < min || nc <= 0 || no <= nc || yo <= 0 {
			return 0
		}
		rc := (float64(yc) + math.Sqrt(float64(yc))) / float64(nc)
		return rc / (float64(yo) / float64(no))
	}
	return max(ratio(s.Control.PipelinesWithoutHistory, in.Control.Pipelines, s.Old.PipelinesWithoutHistory, in.Old.Pipelines),
		ratio(s.Control.Jobs, in.Control.Jobs, s.Old.Jobs, in.Old.Jobs))
}

// adjust raises the null share rho by the cohort ratio lambda > 1 and never
// lowers it.
func adjust(rho, lambda float64) float64 {
	if lambda <= 1 {
		return rho
	}
	return rho * lambda / (rho*lambda + 1 - rho)
}

func topSum(top []int64, k int) int64 {
	var s int64
	for i := 0; i < k && i < len(top); i++ {
		s += top[i]
	}
	return s
}

func (in *RingInput) validate() error {
	var errs []string
	check := func(what string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Sprintf("%s is %d", what, v))
		}
	}
	for _, s := range []struct {
		name string
		s    *Side
	}{{"new", &in.New}, {"old", &in.Old}} {
		check(s.name+" pipelines", s.s.Pipelines)
		check(s.name+" jobs", s.s.Jobs)
		check(s.name+" failed jobs", s.s.FailedJobs)
		check(s.name+" failed orgs", s.s.FailedOrgs)
		check(s.name+" history jobs", s.s.History.Jobs)
		check(s.name+" history failed jobs", s.s.History.FailedJobs)
		if s.s.FailedJobs > s.s.Jobs {
			errs = append(errs, fmt.Sprintf("%s side has %d failed of %d jobs", s.name, s.s.FailedJobs, s.s.Jobs))
		}
		if s.s.History.FailedJobs > s.s.History.Jobs {
			errs = append(errs, fmt.Sprintf("%s side's history has %d failed of %d jobs", s.name, s.s.History.FailedJobs, s.s.History.Jobs))
		}
		if s.s.Pipelines == 0 && s.s.Jobs > 0 {
			errs = append(errs, fmt.Sprintf("%s side has %d jobs but no pipeline", s.name, s.s.Jobs))
		}
		for _, v := range s.s.TopOrgFailedJobs {
			check(s.name+" top org failed jobs", v)
		}
	}
	for _, sig := range in.Signatures {
		for _, s := range []struct {
			name string
			ss   *SignatureSide
			side *Side
		}{{"new", &sig.New, &in.New}, {"old", &sig.Old, &in.Old}} {
			ss := s.ss
			switch {
			case ss.Pipelines < 0 || ss.Jobs < 0 || ss.Orgs < 0 || ss.PipelinesWithoutHistory < 0 || ss.OrgsWithoutHistory < 0 || slices.ContainsFunc(ss.TopOrgs, func(v int64) bool { return v < 0 }):
				errs = append(errs, fmt.Sprintf("signature %s has a negative count on the %s side: %+v", sig.ID, s.name, *ss))
			case ss.PipelinesWithoutHistory > ss.Pipelines || ss.Pipelines > s.side.Pipelines:
				errs = append(errs, fmt.Sprintf("signature %s: %d pipelines without history, %d with it, %d exposed on the %s side",
					sig.ID, ss.PipelinesWithoutHistory, ss.Pipelines, s.side.Pipelines, s.name))
			case ss.OrgsWithoutHistory > ss.PipelinesWithoutHistory:
				errs = append(errs, fmt.Sprintf("signature %s: %d orgs among %d pipelines on the %s side", sig.ID, ss.OrgsWithoutHistory, ss.PipelinesWithoutHistory, s.name))
			}
		}
	}
	if len(errs) > 0 {
		if len(errs) > 3 {
			errs = append(errs[:3], fmt.Sprintf("and %d more", len(errs)-3))
		}
		return fmt.Errorf("%w: %s", ErrInvalidInput, strings.Join(errs, "; "))
	}
	return nil
}
