package simulate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Clock is simulated time: it moves only when the simulator sets it. It is
// the rollout.Clock of the Service and the Controller under simulation.
type Clock struct{ ns atomic.Int64 }

var _ rollout.Clock = (*Clock)(nil)

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now implements rollout.Clock.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// simStart is when every simulation begins: a Monday, so the weekly cycle
// starts with a working week.
var simStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// HealthName names imagegate's health gate in the default
// configuration: the telemetry analysis of issue 7, as serve runs it. The
// JSON output reports the gate a run used (Params.healthName), so a
// result says which imagegate it measured.
const HealthName = "telemetry"

// healthName is HealthName, with the failure-rate gate when it joins.
func (p Params) healthName() string {
	if p.MaxFailureRate > 0 {
		return HealthName + "+failure-rate"
	}
	return HealthName
}

// serviceOptions is the one place the simulated control plane's Service
// is configured, the imagegate detector's health gate included. It is
// serve's: the telemetry analysis with the default policies (rollback on
// a failing decision), the failure-rate gate joining it only when
// MaxFailureRate is set, and the Signer that gives failed jobs' texts the
// signatures the analysis counts.
func serviceOptions(ctx context.Context, p Params, clock rollout.Clock, st rollout.Store) (rollout.ServiceOptions, error) {
	telemetry := rollout.NewTelemetryHealth(st, rollout.AnalysisPolicies{}, nil)
	health := rollout.AllOf{telemetry}
	if p.MaxFailureRate > 0 {
		health = append(health, rollout.FailureRateHealth{Jobs: st, MaxFailureRate: p.MaxFailureRate, MinJobs: p.HealthMinJobs})
	}
	signer, err := rollout.NewStoredSigner(ctx, st, clock.Now())
	if err != nil {
		return rollout.ServiceOptions{}, err
	}
	return rollout.ServiceOptions{
		Clock:        clock,
		Health:       health,
		Analyzer:     telemetry,
		Signer:       signer,
		AutoRollback: true,
		// Simulated versions carry no snapshot or check report: the gate
		// under test is the telemetry, not the release check.
		AllowUnknownGate: true,
		// Every write of the Service refreshes its routing table at once
		// and the simulator is its only writer; the background refresh and
		// flush run on wall time and have nothing to add.
		RefreshInterval: time.Hour,
		FlushInterval:   time.Hour,
	}, nil
}

var ringNames = []string{"canary", "early", "wave1", "wave2", "everyone"}

// ringPlan is the serve config's five-ring plan: Ring 0 names orgs, the
// others take cumulative shares of the rest, each with the control share.
func ringPlan(p Params, ring0 []string) []rollout.Ring {
	pct := []float64{0, 2, 10, 50, 100}
	minJobs := []int{20, 100, 500, 1000, 0}
	rings := make([]rollout.Ring, len(ringNames))
	for i, n := range ringNames {
		rings[i] = rollout.Ring{Name: n, Percent: pct[i], BakeTime: p.BakeTimes[i], MinJobs: minJobs[i], ControlPercent: p.ControlPercent}
	}
	rings[0].Orgs = ring0
	return rings
}

// Detector names, imagegate first.
var detectorNames = []string{"imagegate", "threshold", "mann-whitney"}

// verdict is one detector's outcome on one rollout.
type verdict struct {
	Halted bool
	Ring   int
	Minute int // index of the simulated minute at whose end it halted
	At     time.Time
}

// labelRun is one image label's rollout under simulation.
type labelRun struct {
	li       int
	name     string
	old, new string
	worse    bool
	id       string
	rings    []rollout.Ring
	state    rollout.State
	ring     int
	ringFrom time.Time
	ring0At  time.Time
	done     bool
	// reason is why imagegate halted the rollout: the stored reason of a
	// halt or rollback, or in a dry run the first failing verdict's.
	reason string

	verdicts []verdict
	peers    []peer
	seenRing int       // the ring the peers last saw
	seenFrom time.Time // and when it started

	// caused counts, per minute of start, the failed jobs the bad version
	// caused; orgFirst is the minute of each org's first such job.
	caused   []int32
	orgFirst map[int32]int
}

type job struct {
	pipe  int32
	run   int64
	first bool // first job of its run: resolved before the others
	storm bool
	start time.Time
	res   rollout.Resolution
	err   error
}

type action struct {
	at   time.Time
	pin  bool // else stop
	pipe int32
}

// gateLog wraps imagegate's gate and keeps, per rollout, the reason of
// its last verdict and of its first unhealthy one: what `simulate` shows
// of why imagegate did (or did not) halt. With dry set it also records
// instead of acting: an unhealthy verdict is answered healthy, so the
// controller carries on; inconclusive verdicts still hold the ring, as
// they would. It hides a StartGate, which the simulated gate (telemetry,
// failure rate) does not have.
type gateLog struct {
	inner rollout.Health
	dry   bool
	mu    sync.Mutex
	seen  map[string]*gateVerdicts // by rollout id
}

type gateVerdicts struct {
	failed     bool
	failedRing int
	failedWhy  string // the first unhealthy verdict's reason
	lastRing   int
	lastReason string // the last verdict's reason, whatever it was
}

var _ rollout.Health = (*gateLog)(nil)

// Check implements rollout.Health.
func (g *gateLog) Check(ctx context.Context, r rollout.Rollout, ring int) (rollout.HealthResult, error) {
	res, err := g.inner.Check(ctx, r, ring)
	if err != nil {
		return res, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]*gateVerdicts{}
	}
	v := g.seen[r.ID]
	if v == nil {
		v = &gateVerdicts{}
		g.seen[r.ID] = v
	}
	v.lastRing, v.lastReason = ring, res.Reason
	if !res.Known || res.Healthy {
		return res, nil
	}
	if !v.failed {
		v.failed, v.failedRing, v.failedWhy = true, ring, res.Reason
	}
	if !g.dry {
		return res, nil
	}
	return rollout.HealthResult{Known: true, Healthy: true, Reason: "dry-run, would have failed: " + res.Reason}, nil
}

// fired reports whether a dry-run gate has found rollout id unhealthy, in
// which ring and why; false unless dry (acting, the rollout's own state
// says it).
func (g *gateLog) fired(id string) (ring int, reason string, ok bool) {
	if !g.dry {
		return 0, "", false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.seen[id]
	if v == nil || !v.failed {
		return 0, "", false
	}
	return v.failedRing, v.failedWhy, true
}

// last is the reason of the gate's last verdict on rollout id, prefixed
// with its ring; "" before its first.
func (g *gateLog) last(id string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.seen[id]
	if v == nil {
		return ""
	}
	return fmt.Sprintf("ring %d: %s", v.lastRing, v.lastReason)
}

// ringSize bounds how far ahead jobs and reports are scheduled, in
// minutes: longer than the longest job plus its report delay.
const ringSize = 512

type sim struct {
	ctx   context.Context
	p     Params
	rng   *rand.Rand
	f     *fleet
	clock *Clock
	svc   *rollout.Service
	ctl   *rollout.Controller
	gate  *gateLog

	labels  []*labelRun
	starts  [ringSize][]job
	reports [ringSize][]rollout.JobEvent
	actions []action

	nextJob, nextRun int64
	jobs, events     int64
	ingest           time.Duration // wall time in IngestEvents
	tick             time.Duration // wall time in Controller.Tick

	outageFrom, outageTo time.Time
	stormPipe            int32
}

// SeedResult is one seed's outcome.
type SeedResult struct {
	Seed     uint64        `json:"seed"`
	Rollouts []RolloutRun  `json:"rollouts"`
	Jobs     int64         `json:"jobs"`
	Events   int64         `json:"events"`
	Minutes  int           `json:"minutes"`
	Fleet    FleetStats    `json:"fleet"`
	Elapsed  time.Duration `json:"-"`
	// Ingest and Tick are the wall time spent in IngestEvents and in the
	// controller's ticks: where a run's time goes.
	Ingest time.Duration `json:"-"`
	Tick   time.Duration `json:"-"`
}

// FleetStats describe the fleet a seed drew.
type FleetStats struct {
	Orgs      int `json:"orgs"`
	Pipelines int `json:"pipelines"`
	// Ring0Pipelines run in Ring 0's orgs; Affected use the broken
	// feature, Ring0Affected of them in Ring 0, in Ring0AffectedOrgs orgs.
	Ring0Pipelines    int `json:"ring0Pipelines"`
	Affected          int `json:"affected"`
	Ring0Affected     int `json:"ring0Affected"`
	Ring0AffectedOrgs int `json:"ring0AffectedOrgs"`
}

// RolloutRun is one label's rollout in one seed, per detector.
type RolloutRun struct {
	Label string        `json:"label"`
	Worse bool          `json:"worse"`
	State rollout.State `json:"state"`
	// Ring is the ring the rollout was in when it stopped or the run
	// ended.
	Ring int `json:"ring"`
	// CausedFailures counts the failed jobs the new version caused in the
	// whole run.
	CausedFailures int64 `json:"causedFailures"`
	// Reason is why imagegate halted it: the reason the controller stored
	// with the halt or rollback, or in a dry run the reason of the gate's
	// first failing verdict; "" when imagegate did not halt it.
	Reason string `json:"reason,omitempty"`
	// LastVerdict is the reason of imagegate's gate's last verdict on the
	// rollout, after its ring ("ring 1: ..."): why a rollout that was not
	// halted passed or was held.
	LastVerdict string            `json:"lastVerdict,omitempty"`
	Detectors   []DetectorOutcome `json:"detectors"`
}

// DetectorOutcome is what one detector did to one rollout.
type DetectorOutcome struct {
	Name   string `json:"name"`
	Halted bool   `json:"halted"`
	Ring   int    `json:"ring"`
	// Censored: the detector had not decided when the rollout stopped
	// (another detector acted, it completed, or the run ended).
	Censored bool `json:"censored"`
	// Minutes from the rollout reaching Ring 0 to the halt.
	Minutes float64 `json:"minutes"`
	// FailedJobs and AffectedOrgs caused by the bad version before the halt.
	FailedJobs   int64 `json:"failedJobs"`
	AffectedOrgs int64 `json:"affectedOrgs"`
}

// RunSeed simulates one seed against a fresh store opened by open and
// reports every detector's outcome. The same params and seed give the same
// result.
func RunSeed(ctx context.Context, p Params, seed uint64, open Opener) (SeedResult, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return SeedResult{}, err
	}
	wall := time.Now()
	st, closeStore, err := open(ctx, seed)
	if err != nil {
		return SeedResult{}, fmt.Errorf("open the store for seed %d: %w", seed, err)
	}
	defer closeStore()
	clock := NewClock(simStart)
	so, err := serviceOptions(ctx, p, clock, st)
	if err != nil {
		return SeedResult{}, err
	}
	gate := &gateLog{inner: so.Health, dry: p.DryRun}
	so.Health = gate
	svc, err := rollout.NewService(ctx, st, so)
	if err != nil {
		return SeedResult{}, fmt.Errorf("start the service: %w", err)
	}
	defer svc.Close()
	s := &sim{ctx: ctx, p: p, gate: gate, rng: rand.New(rand.NewPCG(seed, 0x1a6e6a7e)), clock: clock, svc: svc, stormPipe: -1,
		ctl: rollout.NewController(svc, st, rollout.ControllerOptions{Holder: "simulate", Clock: clock})}
	s.f = newFleet(p, s.rng)
	res, err := s.run()
	res.Seed, res.Elapsed = seed, time.Since(wall)
	if err != nil {
		return res, fmt.Errorf("seed %d at %s: %w", seed, s.clock.Now().Format(time.RFC3339), err)
	}
	return res, nil
}

func (s *sim) run() (SeedResult, error) {
	ctx, p := s.ctx, s.p
	var ring0 []string
	for _, o := range s.f.orgs {
		if o.ring0 {
			ring0 = append(ring0, o.name)
		}
	}
	if err := s.svc.SetRings(ctx, "simulate", "", ringPlan(p, ring0)); err != nil {
		return SeedResult{}, err
	}
	n := 1
	if p.Scenario == ScenarioTwoLabels {
		n = 2
	}
	minutes := int(p.Hours * 60)
	for li := range n {
		ls := &labelRun{li: li, name: labelNames[li], old: "2026.10.26.1", new: "2026.11.02.1", worse: p.worse(li),
			verdicts: make([]verdict, len(detectorNames)), caused: make([]int32, minutes), orgFirst: map[int32]int{}, seenRing: -1,
			peers: []peer{
				&thresholdGate{window: p.ThresholdWindow, diff: p.ThresholdDiff, minJobs: int64(p.ThresholdMinJobs), limit: p.FailureLimit},
				&mannWhitneyGate{every: p.MWEvery, bucket: p.MWBucket, conf: p.MWConfidence, tol: p.MWTolerance, allowedInc: p.MWAllowedIncrease},
			}}
		if _, err := s.svc.PushVersion(ctx, "simulate", rollout.Version{Label: ls.name, Version: ls.old}); err != nil {
			return SeedResult{}, err
		}
		if _, err := s.svc.StartRollout(ctx, "simulate", rollout.StartRequest{Label: ls.name, Version: ls.old}); err != nil {
			return SeedResult{}, err
		}
		s.labels = append(s.labels, ls)
	}
	startMinute := int(p.HistoryHours * 60)
	tickEvery := int(p.TickEvery / time.Minute)
	m := 0
	for ; m < minutes; m++ {
		t := simStart.Add(time.Duration(m) * time.Minute)
		s.clock.Set(t)
		if err := s.applyActions(t); err != nil {
			return SeedResult{}, err
		}
		if m == startMinute {
			if err := s.startRollouts(); err != nil {
				return SeedResult{}, err
			}
		}
		if err := s.startJobs(m, t); err != nil {
			return SeedResult{}, err
		}
		s.clock.Set(t.Add(time.Minute))
		evs := s.reports[m%ringSize]
		s.reports[m%ringSize] = nil
		if err := s.ingestEvents(evs); err != nil {
			return SeedResult{}, err
		}
		s.observePeers(m, t.Add(time.Minute), evs)
		if m >= startMinute && (m+1)%tickEvery == 0 {
			if err := s.tickController(m, t.Add(time.Minute)); err != nil {
				return SeedResult{}, err
			}
			if s.allDone() {
				m++
				break
			}
		}
	}
	return s.result(m), nil
}

func (s *sim) allDone() bool {
	for _, ls := range s.labels {
		if !ls.done {
			return false
		}
	}
	return true
}

func (s *sim) startRollouts() error {
	for _, ls := range s.labels {
		if _, err := s.svc.PushVersion(s.ctx, "simulate", rollout.Version{Label: ls.name, Version: ls.new}); err != nil {
			return err
		}
		r, err := s.svc.StartRollout(s.ctx, "simulate", rollout.StartRequest{Label: ls.name, Version: ls.new, AutoRollback: true})
		if err != nil {
			return err
		}
		ls.id, ls.state, ls.rings = r.ID, r.State, r.Rings
	}
	return nil
}

// applyActions carries out what customers decided earlier: pins of the
// old version, pipelines switched off.
func (s *sim) applyActions(t time.Time) error {
	i := 0
	for ; i < len(s.actions) && !s.actions[i].at.After(t); i++ {
		a := s.actions[i]
		pl := &s.f.pipes[a.pipe]
		if !a.pin {
			pl.stopped = true
			continue
		}
		ls := s.labels[pl.label]
		o := &s.f.orgs[pl.org]
		_, err := s.svc.SetPin(s.ctx, rollout.RoleOrgPrefix+o.name, rollout.Pin{Org: o.name, Label: ls.name, Version: ls.old,
			Reason: "our builds broke after the image update", ExpiresAt: t.Add(7 * 24 * time.Hour)})
		if err != nil {
			return fmt.Errorf("pin %s: %w", o.name, err)
		}
	}
	s.actions = s.actions[i:]
	return nil
}

// startJobs starts the minute's jobs: new runs by the arrival process,
// nightly schedules, later stages of earlier runs, retries; resolves
// them through the Service as runners do, and schedules their reports.
func (s *sim) startJobs(m int, t time.Time) error {
	p, r := s.p, s.rng
	js := s.starts[m%ringSize]
	s.starts[m%ringSize] = nil
	addRun := func(pi int32) {
		pl := &s.f.pipes[pi]
		if pl.stopped {
			return
		}
		s.nextRun++
		for k := range pl.jobsPerRun {
			js = append(js, job{pipe: pi, run: s.nextRun, first: k == 0, start: t.Add(time.Duration(r.IntN(60_000)) * time.Millisecond)})
		}
	}
	lambda := p.JobsPerHour / 60 * cycle(t) / s.f.meanJobsPerRun
	for range poisson(r, lambda) {
		addRun(s.f.day.draw(r))
	}
	for _, pi := range s.f.nightly[t.Hour()*60+t.Minute()] {
		addRun(pi)
	}
	if len(js) == 0 {
		return nil
	}
	// Phase 1 resolves each new run's first job, phase 2 everything else
	// (matrix jobs, later stages, retries): a run's first job has assigned
	// its version by then, so affinity answers the same whatever order the
	// parallel resolves take.
	if err := s.resolve(js, true); err != nil {
		return err
	}
	if err := s.resolve(js, false); err != nil {
		return err
	}
	for i := range js {
		s.finish(m, &js[i])
	}
	return nil
}

func (s *sim) resolve(js []job, first bool) error {
	const workers = 16
	var wg sync.WaitGroup
	for w := range min(workers, len(js)) {
		wg.Go(func() {
			for i := w; i < len(js); i += workers {
				j := &js[i]
				if j.first != first {
					continue
				}
				pl := &s.f.pipes[j.pipe]
				j.res, j.err = s.svc.Resolve(s.ctx, s.f.orgs[pl.org].name, labelNames[pl.label], runID(j.run))
			}
		})
	}
	wg.Wait()
	for i := range js {
		if js[i].err != nil {
			return fmt.Errorf("resolve: %w", js[i].err)
		}
	}
	return nil
}

func runID(n int64) string { return "run-" + strconv.FormatInt(n, 10) }

// jobID is increasing and fixed-width, as CI systems number jobs; the
// store's primary key then grows at its end.
func jobID(n int64) string {
	var b [16]byte
	b[0] = 'j'
	for i := len(b) - 1; i > 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[:])
}

// finish decides how job j ends, with which text, when it reports, and
// what its owner does about it.
func (s *sim) finish(m int, j *job) {
	p, r, f := s.p, s.rng, s.f
	pl := &f.pipes[j.pipe]
	o := &f.orgs[pl.org]
	ls := s.labels[pl.label]
	isNew := j.res.Version == ls.new
	outcome, text, caused := rollout.OutcomeSucceeded, "", false
	broken := ls.worse && isNew && pl.uses && (p.Scenario == ScenarioBrokenFeature || p.Scenario == ScenarioTextDrift || p.Scenario == ScenarioTwoLabels)
	pf := min(0.9, p.Background*hourMult(j.start)*o.mult*pl.mult)
	switch u := r.Float64(); {
	case broken:
		outcome, caused = rollout.OutcomeFailed, true
		text = features[p.Feature].text(r, pl.repo, pl.py, p.Scenario == ScenarioTextDrift)
	case j.storm:
		outcome, text = rollout.OutcomeFailed, stormText(r, pl.repo)
	case !j.start.Before(s.outageFrom) && j.start.Before(s.outageTo) && u < p.OutageRate:
		outcome, text = rollout.OutcomeFailed, outageText(r, pl.repo)
	case u < pf:
		private := p.PrivateShare
		if o.ring0 {
			private = min(1, 2*private) // ring 0's own flaky pipelines
		}
		if r.Float64() < private {
			outcome, text = rollout.OutcomeFailed, privateText(r, pl.repo, int(j.pipe), r.IntN(3))
			break
		}
		sig := f.drawSig(r)
		if p.Scenario == ScenarioImprovement && isNew && sig == 0 {
			break // the new version fixed the commonest failure
		}
		outcome, text = rollout.OutcomeFailed, f.sigs[sig].text(r, pl.repo)
	case p.Scenario == ScenarioSlowDegradation && isNew && u < pf*(1+(p.Factor-1)*(1-p.PrivateShare)*f.sigShare(degraded)):
		outcome, text, caused = rollout.OutcomeFailed, f.sigs[degraded].text(r, pl.repo), true
	case u > 0.99:
		outcome = rollout.OutcomeCanceled
	}
	dur := time.Duration(math.Exp(math.Log(240)+0.8*r.NormFloat64()) * float64(time.Second))
	if outcome == rollout.OutcomeFailed {
		dur = dur * 2 / 5
	}
	dur = min(dur, 3*time.Hour)
	delay := 2*time.Second + time.Duration(r.ExpFloat64()*8*float64(time.Second))
	if r.Float64() < 0.02 {
		delay = 5*time.Minute + time.Duration(r.IntN(25*60))*time.Second // a runner that reports late
	}
	end := j.start.Add(dur)
	at := end.Add(delay)
	rm := int(at.Sub(simStart) / time.Minute)
	s.nextJob++
	s.jobs++
	ev := s.event(j, pl, o, ls, outcome, text, dur)
	s.reports[rm%ringSize] = append(s.reports[rm%ringSize], ev)

	if caused {
		ls.caused[m]++
		if _, ok := ls.orgFirst[pl.org]; !ok {
			ls.orgFirst[pl.org] = m
		}
	}
	if j.first && pl.deployStage && outcome == rollout.OutcomeSucceeded {
		next := end.Add(10 * time.Second)
		// A stage due within this minute starts with the next one: this
		// minute's starts are already under way.
		sm := max(int(next.Sub(simStart)/time.Minute), m+1)
		next = maxTime(next, simStart.Add(time.Duration(sm)*time.Minute))
		s.starts[sm%ringSize] = append(s.starts[sm%ringSize], job{pipe: j.pipe, run: j.run, start: next})
	}
	if !isNew || j.storm {
		return
	}
	if outcome == rollout.OutcomeFailed {
		pl.streak++
	} else {
		pl.streak = 0
	}
	if pl.streak >= p.GiveUpAfter && !pl.reacted {
		pl.reacted = true
		react := j.start.Add(p.ReactAfter)
		if r.Float64() < p.PinShare && !o.pinned[pl.label] {
			o.pinned[pl.label] = true
			s.actions = append(s.actions, action{at: react, pin: true, pipe: j.pipe})
		}
		if r.Float64() < p.StopShare {
			s.actions = append(s.actions, action{at: react, pipe: j.pipe})
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// degraded is the rank of the signature slow-degradation makes commoner:
// a common one, but not the commonest.
const degraded = 4

// event is the runner's report of job j.
func (s *sim) event(j *job, pl *pipeline, o *org, ls *labelRun, outcome, text string, dur time.Duration) rollout.JobEvent {
	return rollout.JobEvent{JobID: jobID(s.nextJob), Org: o.name, Label: ls.name, Version: j.res.Version, Ring: j.res.Ring,
		Pipeline: pl.id, RunID: runID(j.run), Outcome: outcome, StartedAt: j.start, DurationMs: dur.Milliseconds(), ErrorText: text}
}

func (s *sim) ingestEvents(evs []rollout.JobEvent) error {
	if len(evs) == 0 {
		return nil
	}
	start := time.Now()
	defer func() { s.ingest += time.Since(start) }()
	batch := min(s.p.Batch, rollout.MaxEventBatch)
	for len(evs) > 0 {
		n := min(batch, len(evs))
		got, err := s.svc.IngestEvents(s.ctx, evs[:n])
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("ingest: %d of %d events were new: job ids repeat", got, n)
		}
		s.events += int64(n)
		evs = evs[n:]
	}
	return nil
}

// observePeers gives each peer the minute's reports of its rollout's
// current ring.
func (s *sim) observePeers(m int, now time.Time, evs []rollout.JobEvent) {
	for _, ls := range s.labels {
		if ls.done || ls.state != rollout.StateBaking {
			continue
		}
		var c minute
		for i := range evs {
			e := &evs[i]
			if e.Label != ls.name || e.Outcome == rollout.OutcomeCanceled {
				continue
			}
			failed := e.Outcome == rollout.OutcomeFailed
			switch {
			case e.Version == ls.new && e.Ring == ls.ring:
				c.NewJobs++
				if failed {
					c.NewFailed++
				}
			case e.Version == ls.old:
				c.OldJobs++
				if failed {
					c.OldFailed++
				}
			}
		}
		changed := ls.ring != ls.seenRing || !ls.ringFrom.Equal(ls.seenFrom)
		ls.seenRing, ls.seenFrom = ls.ring, ls.ringFrom
		inRing := now.Sub(ls.ringFrom)
		for i, pr := range ls.peers {
			v := &ls.verdicts[i+1]
			if v.Halted {
				continue
			}
			if pr.observe(inRing, changed, c) {
				*v = verdict{Halted: true, Ring: ls.ring, Minute: m, At: now}
			}
		}
	}
}

// tickController runs one reconcile pass and reads back what it did.
func (s *sim) tickController(m int, now time.Time) error {
	start := time.Now()
	err := s.ctl.Tick(s.ctx)
	s.tick += time.Since(start)
	if err != nil {
		return fmt.Errorf("controller tick: %w", err)
	}
	for _, ls := range s.labels {
		if ls.done || ls.id == "" {
			continue
		}
		r, err := s.svc.GetRollout(s.ctx, ls.id)
		if err != nil {
			return err
		}
		if r.State == rollout.StateBaking && ls.ring0At.IsZero() {
			ls.ring0At = r.RingStartedAt
			s.scheduleIncidents(ls)
		}
		if ring, why, ok := s.gate.fired(r.ID); ok && !ls.verdicts[0].Halted {
			ls.verdicts[0] = verdict{Halted: true, Ring: ring, Minute: m, At: now}
			ls.reason = fmt.Sprintf("health gate in ring %d (%s), dry run: %s", ring, ls.rings[ring].Name, why)
		}
		switch r.State {
		case rollout.StateHalted, rollout.StateRolledBack:
			ls.verdicts[0] = verdict{Halted: true, Ring: r.Ring, Minute: m, At: now}
			ls.reason = r.Reason
			ls.done = true
		case rollout.StateCompleted, rollout.StateSuperseded:
			ls.done = true
		}
		ls.state, ls.ring, ls.ringFrom = r.State, r.Ring, r.RingStartedAt
	}
	return nil
}

// scheduleIncidents places the outage and the retry storm relative to the
// moment the (first) rollout reached Ring 0.
func (s *sim) scheduleIncidents(ls *labelRun) {
	p := s.p
	if ls.li != 0 {
		return
	}
	switch p.Scenario {
	case ScenarioOutage:
		s.outageFrom = ls.ring0At.Add(p.OutageAfter)
		s.outageTo = s.outageFrom.Add(time.Hour)
	case ScenarioRetryStorm:
		// One Ring 0 pipeline on the new version (not in the control share)
		// re-runs its failing job StormRetries times in one workflow run.
		for i := range s.f.pipes {
			pl := &s.f.pipes[i]
			o := &s.f.orgs[pl.org]
			if o.ring0 && pl.label == 0 && !pl.nightly && !rollout.InControl(ls.rings[0], o.name) {
				s.stormPipe = int32(i)
				break
			}
		}
		if s.stormPipe < 0 {
			return
		}
		s.nextRun++
		from := ls.ring0At.Add(15 * time.Minute)
		for k := range p.StormRetries {
			t := from.Add(time.Duration(k) * p.StormEvery)
			sm := int(t.Sub(simStart) / time.Minute)
			s.starts[sm%ringSize] = append(s.starts[sm%ringSize], job{pipe: s.stormPipe, run: s.nextRun, first: k == 0, storm: true, start: t})
		}
	}
}

func (s *sim) result(minutes int) SeedResult {
	res := SeedResult{Jobs: s.jobs, Events: s.events, Minutes: minutes, Ingest: s.ingest, Tick: s.tick}
	res.Fleet.Orgs, res.Fleet.Pipelines = len(s.f.orgs), len(s.f.pipes)
	affectedOrgs := map[int32]bool{}
	for _, pl := range s.f.pipes {
		r0 := s.f.orgs[pl.org].ring0
		res.Fleet.Ring0Pipelines += b2i(r0)
		res.Fleet.Affected += b2i(pl.uses)
		res.Fleet.Ring0Affected += b2i(pl.uses && r0)
		if pl.uses && r0 {
			affectedOrgs[pl.org] = true
		}
	}
	res.Fleet.Ring0AffectedOrgs = len(affectedOrgs)
	for _, ls := range s.labels {
		rr := RolloutRun{Label: ls.name, Worse: ls.worse, State: ls.state, Ring: ls.ring, Reason: ls.reason}
		if ls.id != "" {
			rr.LastVerdict = s.gate.last(ls.id)
		}
		for _, c := range ls.caused {
			rr.CausedFailures += int64(c)
		}
		for i, v := range ls.verdicts {
			d := DetectorOutcome{Name: detectorNames[i], Halted: v.Halted, Ring: -1, Censored: !v.Halted}
			if v.Halted {
				d.Ring = v.Ring
				d.Minutes = v.At.Sub(ls.ring0At).Minutes()
				for mm := 0; mm <= v.Minute && mm < len(ls.caused); mm++ {
					d.FailedJobs += int64(ls.caused[mm])
				}
				for _, first := range ls.orgFirst {
					if first <= v.Minute {
						d.AffectedOrgs++
					}
				}
			}
			rr.Detectors = append(rr.Detectors, d)
		}
		res.Rollouts = append(res.Rollouts, rr)
	}
	return res
}
