package simulate

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Scenarios, as the issue names them.
const (
	ScenarioClean           = "clean"
	ScenarioBrokenFeature   = "broken-feature"
	ScenarioSlowDegradation = "slow-degradation"
	ScenarioOutage          = "outage"
	ScenarioRetryStorm      = "retry-storm"
	ScenarioImprovement     = "improvement"
	ScenarioTextDrift       = "text-drift"
	ScenarioTwoLabels       = "two-labels"
)

// Scenarios lists every scenario in the order the help text shows them.
var Scenarios = []string{ScenarioClean, ScenarioBrokenFeature, ScenarioSlowDegradation, ScenarioOutage,
	ScenarioRetryStorm, ScenarioImprovement, ScenarioTextDrift, ScenarioTwoLabels}

// Params describe one simulated fleet, its rollout and the detectors;
// DefaultParams has every default, WithDefaults fills the zero fields that
// cannot mean anything else. Every field is
// a flag of `imagegate simulate` and is echoed in the JSON output, so a
// result says what produced it.
type Params struct {
	Scenario string `json:"scenario"`
	// HistoryHours of the old version alone come before the rollout starts
	// (the fleet's history); Hours is the whole simulated span, history
	// included. A run ends earlier once every rollout is terminal: nothing
	// can be observed after that.
	HistoryHours float64 `json:"historyHours"`
	Hours        float64 `json:"hours"`

	// The fleet: JobsPerHour on average over a week (the daily and weekly
	// cycles move it around that), Orgs of heavy-tailed sizes, Ring0Orgs of
	// them named in Ring 0, chosen among the busiest Ring0Pool (a share) of
	// them. The default, 100 of the busiest 10 %, gives Ring 0 about 6 % of
	// the jobs and 2,000 to 3,000 pipelines: a canary with enough distinct
	// pipelines that a feature on 2 % of them shows in a handful of orgs
	// within half an hour.
	JobsPerHour float64 `json:"jobsPerHour"`
	Orgs        int     `json:"orgs"`
	Ring0Orgs   int     `json:"ring0Orgs"`
	// Ring0Pool is the share of the busiest orgs Ring 0's are drawn from.
	Ring0Pool float64 `json:"ring0Pool"`
	// OrgSizeAlpha is the Pareto exponent of org sizes (smaller: heavier tail).
	OrgSizeAlpha float64 `json:"orgSizeAlpha"`
	// NightlyShare of pipelines run once a night only.
	NightlyShare float64 `json:"nightlyShare"`

	// Background is the fleet's failure rate for reasons that have nothing
	// to do with the image, spread over Signatures shared signatures with
	// Zipf(SignatureZipf) rates plus each pipeline's own flaky tests
	// (PrivateShare of failures). Ring0Flakiness multiplies the failure
	// rate of Ring 0's orgs, on both versions and in history.
	Background     float64 `json:"background"`
	Signatures     int     `json:"signatures"`
	SignatureZipf  float64 `json:"signatureZipf"`
	PrivateShare   float64 `json:"privateShare"`
	Ring0Flakiness float64 `json:"ring0Flakiness"`

	// Feature is what the broken version breaks (sqlite3, docker, node18,
	// java, openssl); Affected is the share of pipelines that use it.
	Feature  string  `json:"feature"`
	Affected float64 `json:"affected"`
	// Factor multiplies one existing signature's rate on the new version
	// (slow-degradation).
	Factor float64 `json:"factor"`
	// OutageRate of all jobs, on both versions, fail during the hour of the
	// outage, starting OutageAfter the rollout reached Ring 0.
	OutageRate  float64       `json:"outageRate"`
	OutageAfter time.Duration `json:"outageAfter"`
	// StormRetries is how often one Ring 0 pipeline retries its failing job
	// (retry-storm), one retry every StormEvery.
	StormRetries int           `json:"stormRetries"`
	StormEvery   time.Duration `json:"stormEvery"`

	// Customers react to a pipeline that failed GiveUpAfter times in a row
	// on the new version: after ReactAfter, PinShare of orgs pin the old
	// version, StopShare of such pipelines stop running.
	GiveUpAfter int           `json:"giveUpAfter"`
	ReactAfter  time.Duration `json:"reactAfter"`
	PinShare    float64       `json:"pinShare"`
	StopShare   float64       `json:"stopShare"`

	// The control plane: ring bake times (canary, early, wave1, wave2,
	// everyone), the control share of every ring, how often the controller
	// ticks, and the size of IngestEvents batches.
	BakeTimes      []time.Duration `json:"bakeTimes"`
	ControlPercent float64         `json:"controlPercent"`
	TickEvery      time.Duration   `json:"tickEvery"`
	Batch          int             `json:"batch"`

	// imagegate's optional second gate (rollout.FailureRateHealth, serve's
	// maxFailureRate and healthMinJobs): when MaxFailureRate is above zero
	// it joins the telemetry analysis and fails when the new version's
	// failure rate in the ring exceeds the old one's by MaxFailureRate
	// after HealthMinJobs jobs. Zero, the default, leaves it out, as serve
	// does.
	MaxFailureRate float64 `json:"maxFailureRate"`
	HealthMinJobs  int     `json:"healthMinJobs"`

	// threshold (Flagger / Argo Rollouts): windows of ThresholdWindow,
	// failing when the new rate exceeds the old by ThresholdDiff, judged
	// once ThresholdMinJobs jobs of the new version were seen in the ring;
	// halt after FailureLimit failing windows in a row.
	ThresholdWindow  time.Duration `json:"thresholdWindow"`
	ThresholdDiff    float64       `json:"thresholdDiff"`
	ThresholdMinJobs int           `json:"thresholdMinJobs"`
	FailureLimit     int           `json:"failureLimit"`

	// mann-whitney (Kayenta): every MWEvery, the per-MWBucket failure
	// rates of new and old since the ring started, compared by a
	// Mann-Whitney U test at MWConfidence; high when the confidence
	// interval's lower end exceeds MWTolerance × the Hodges-Lehmann
	// estimate and the mean ratio is at least MWAllowedIncrease.
	MWEvery           time.Duration `json:"mwEvery"`
	MWBucket          time.Duration `json:"mwBucket"`
	MWConfidence      float64       `json:"mwConfidence"`
	MWTolerance       float64       `json:"mwTolerance"`
	MWAllowedIncrease float64       `json:"mwAllowedIncrease"`

	// DryRun lets imagegate's gate decide without acting (the rollout goes
	// on as if every verdict were healthy), so that all three detectors
	// are judged on the same uncensored stream. Off, imagegate acts, as
	// the issue asks, and a peer that had not decided by then is censored.
	DryRun bool `json:"dryRun"`
}

// DefaultParams is the fleet of the issue: a week of 100,000 jobs an hour
// from 10,000 orgs through five rings.
func DefaultParams() Params {
	return Params{
		Scenario: ScenarioClean, HistoryHours: 24, Hours: 168,
		JobsPerHour: 100_000, Orgs: 10_000, Ring0Orgs: 100, Ring0Pool: 0.1, OrgSizeAlpha: 1.2, NightlyShare: 0.1,
		Background: 0.08, Signatures: 300, SignatureZipf: 1.1, PrivateShare: 0.2, Ring0Flakiness: 1.5,
		Feature: "sqlite3", Affected: 0.02, Factor: 3, OutageRate: 0.4, OutageAfter: 20 * time.Minute,
		StormRetries: 200, StormEvery: 20 * time.Second,
		GiveUpAfter: 3, ReactAfter: 45 * time.Minute, PinShare: 0.3, StopShare: 0.3,
		BakeTimes:      []time.Duration{4 * time.Hour, 24 * time.Hour, 24 * time.Hour, 48 * time.Hour, 24 * time.Hour},
		ControlPercent: 10, TickEvery: time.Minute, Batch: 5000,
		HealthMinJobs:   20,
		ThresholdWindow: 5 * time.Minute, ThresholdDiff: 0.05, ThresholdMinJobs: 20, FailureLimit: 3,
		MWEvery: 30 * time.Minute, MWBucket: 5 * time.Minute, MWConfidence: 0.98, MWTolerance: 0.25, MWAllowedIncrease: 1,
	}
}

// WithDefaults returns p with every field whose zero value means nothing
// set to its default. Shares for which zero is meaningful (no background,
// no control share, customers who never pin) keep it: start from
// DefaultParams to change only some.
func (p Params) WithDefaults() Params {
	d := DefaultParams()
	or := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	ori := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	ord := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if p.Scenario == "" {
		p.Scenario = d.Scenario
	}
	if p.Feature == "" {
		p.Feature = d.Feature
	}
	if len(p.BakeTimes) == 0 {
		p.BakeTimes = slices.Clone(d.BakeTimes)
	}
	or(&p.HistoryHours, d.HistoryHours)
	or(&p.Hours, d.Hours)
	or(&p.JobsPerHour, d.JobsPerHour)
	ori(&p.Orgs, d.Orgs)
	ori(&p.Ring0Orgs, d.Ring0Orgs)
	or(&p.Ring0Pool, d.Ring0Pool)
	or(&p.OrgSizeAlpha, d.OrgSizeAlpha)
	ori(&p.Signatures, d.Signatures)
	or(&p.SignatureZipf, d.SignatureZipf)
	or(&p.Ring0Flakiness, d.Ring0Flakiness)
	or(&p.Factor, d.Factor)
	ord(&p.OutageAfter, d.OutageAfter)
	ori(&p.StormRetries, d.StormRetries)
	ord(&p.StormEvery, d.StormEvery)
	ori(&p.GiveUpAfter, d.GiveUpAfter)
	ord(&p.ReactAfter, d.ReactAfter)
	ord(&p.TickEvery, d.TickEvery)
	ori(&p.Batch, d.Batch)
	ori(&p.HealthMinJobs, d.HealthMinJobs)
	ord(&p.ThresholdWindow, d.ThresholdWindow)
	ori(&p.ThresholdMinJobs, d.ThresholdMinJobs)
	ori(&p.FailureLimit, d.FailureLimit)
	ord(&p.MWEvery, d.MWEvery)
	ord(&p.MWBucket, d.MWBucket)
	or(&p.MWConfidence, d.MWConfidence)
	or(&p.MWTolerance, d.MWTolerance)
	or(&p.MWAllowedIncrease, d.MWAllowedIncrease)
	return p
}

// Validate says which parameter is out of range and what it must be.
func (p Params) Validate() error {
	share := func(name string, v float64) error {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%s %v: must be a share between 0 and 1", name, v)
		}
		return nil
	}
	if !slices.Contains(Scenarios, p.Scenario) {
		return fmt.Errorf("scenario %q: must be one of %v", p.Scenario, Scenarios)
	}
	if _, ok := features[p.Feature]; !ok {
		return fmt.Errorf("feature %q: must be one of %v", p.Feature, featureNames())
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"background", p.Background}, {"affected", p.Affected}, {"nightly share", p.NightlyShare}, {"private share", p.PrivateShare},
		{"outage rate", p.OutageRate}, {"pin share", p.PinShare}, {"stop share", p.StopShare}, {"max failure rate", p.MaxFailureRate},
		{"threshold diff", p.ThresholdDiff}} {
		if err := share(c.name, c.v); err != nil {
			return err
		}
	}
	switch {
	case !(p.Hours > p.HistoryHours) || p.HistoryHours < 0 || math.IsInf(p.Hours, 0):
		return fmt.Errorf("hours %v and history hours %v: the run must last longer than its history", p.Hours, p.HistoryHours)
	case !(p.JobsPerHour >= 1) || math.IsInf(p.JobsPerHour, 0):
		return fmt.Errorf("jobs per hour %v: must be at least 1", p.JobsPerHour)
	case p.Orgs < 10:
		return fmt.Errorf("orgs %d: must be at least 10", p.Orgs)
	case p.Ring0Orgs < 1 || p.Ring0Orgs > p.Orgs/2:
		return fmt.Errorf("ring 0 orgs %d: must be between 1 and half the orgs (%d)", p.Ring0Orgs, p.Orgs/2)
	case !(p.Ring0Pool > 0 && p.Ring0Pool <= 1):
		return fmt.Errorf("ring 0 pool %v: must be a share in (0, 1], e.g. 0.1 for the busiest 10%% of orgs", p.Ring0Pool)
	case !(p.OrgSizeAlpha > 0):
		return fmt.Errorf("org size alpha %v: must be positive", p.OrgSizeAlpha)
	case p.Signatures < 1:
		return fmt.Errorf("signatures %d: must be at least 1", p.Signatures)
	case !(p.Ring0Flakiness >= 1) || !(p.Factor >= 1):
		return fmt.Errorf("ring 0 flakiness %v and factor %v: must be at least 1", p.Ring0Flakiness, p.Factor)
	case len(p.BakeTimes) != len(ringNames):
		return fmt.Errorf("bake times: give %d, one per ring %v", len(ringNames), ringNames)
	case !(p.ControlPercent >= 0 && p.ControlPercent < 100):
		return fmt.Errorf("control percent %v: must be in [0, 100)", p.ControlPercent)
	case p.TickEvery < time.Minute || p.TickEvery%time.Minute != 0:
		return fmt.Errorf("tick every %s: must be whole minutes", p.TickEvery)
	case p.Batch < 1:
		return fmt.Errorf("batch %d: must be at least 1", p.Batch)
	case p.ThresholdWindow < time.Minute || p.ThresholdWindow%time.Minute != 0 ||
		p.MWEvery < time.Minute || p.MWEvery%time.Minute != 0 || p.MWBucket < time.Minute || p.MWBucket%time.Minute != 0:
		return fmt.Errorf("threshold window %s, mann-whitney every %s and bucket %s: must be whole minutes", p.ThresholdWindow, p.MWEvery, p.MWBucket)
	case !(p.MWConfidence > 0 && p.MWConfidence < 1):
		return fmt.Errorf("mann-whitney confidence %v: must be between 0 and 1, e.g. 0.98", p.MWConfidence)
	case p.GiveUpAfter < 1 || p.FailureLimit < 1 || p.StormRetries < 1:
		return fmt.Errorf("give up after %d, failure limit %d and storm retries %d: must be at least 1", p.GiveUpAfter, p.FailureLimit, p.StormRetries)
	}
	for i, b := range p.BakeTimes {
		if b < 0 {
			return fmt.Errorf("bake time of ring %s: %s is negative", ringNames[i], b)
		}
	}
	return nil
}

// worse reports whether the scenario's new version is worse than the old
// one for label index li: what a halt is right for.
func (p Params) worse(li int) bool {
	switch p.Scenario {
	case ScenarioBrokenFeature, ScenarioSlowDegradation, ScenarioTextDrift:
		return true
	case ScenarioTwoLabels:
		return li == 1
	}
	return false
}
