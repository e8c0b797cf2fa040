package analysis_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/imagegate/imagegate/internal/analysis"
)

// fleet describes a simulated fleet: orgs with pipelines, one ring on the
// new version (its orgs minus a control share), everything else on the old
// one, and a background of failures with heavy-tailed signature rates.
type fleet struct {
	Orgs, PipelinesPerOrg int
	RingOrgs              int     // orgs 0..RingOrgs-1 are the ring
	ControlEvery          int     // every ControlEvery-th ring org stays on the old version
	FailRate              float64 // background failure rate per job
	Signatures            int     // shared background signatures, Zipf-distributed
	Zipf                  float64 // exponent of their rates
	PrivateShare          float64 // share of failures with a pipeline's own signature (noise)
	HistoryJobs           int     // jobs before the rollout, all on the old version
	Ticks, JobsPerTick    int
	// RingFlakiness multiplies the failure rate of the ring's orgs, on both
	// versions and in history.
	RingFlakiness float64
	// Broken is the share of the new side's pipelines hit by a new
	// signature, which then fails BrokenRate of their jobs.
	Broken, BrokenRate float64
	// Storm: from StormFrom for StormTicks ticks, one new-side pipeline runs
	// StormJobs extra jobs a tick, nine in ten failing with one signature.
	StormFrom, StormTicks, StormJobs int
	// Outage: from OutageFrom for OutageTicks ticks, every job on either
	// side fails with probability OutageRate with one signature.
	OutageFrom, OutageTicks int
	OutageRate              float64
}

func baseFleet() fleet {
	return fleet{Orgs: 300, PipelinesPerOrg: 10, RingOrgs: 60, ControlEvery: 10, FailRate: 0.07,
		Signatures: 150, Zipf: 1.1, PrivateShare: 0.1, HistoryJobs: 30_000, Ticks: 120, JobsPerTick: 600, RingFlakiness: 1}
}

// Signature ids: 0..Signatures-1 shared, then these, then one per pipeline.
const (
	sigBroken = 1_000_000 + iota
	sigStorm
	sigOutage
	sigPrivate
)

type sigSide struct {
	pipes      map[int]bool // pipeline -> has history of this signature
	jobs       int64
	evidence   int64
	orgsAll    map[int]bool
	orgsEvid   map[int]int // org -> evidence pipelines
	evidencePi map[int]bool
}

type sim struct {
	f        fleet
	rng      *rand.Rand
	cdf      []float64 // Zipf cdf over shared signatures
	activity []float64 // cumulative pipeline activity
	orgMult  []float64
	newSide  []bool // per pipeline
	broken   []bool
	history  map[[2]int]bool // (signature, pipeline)
	sides    [2]struct {
		pipes      map[int]bool
		jobs, fail int64
		failOrgs   map[int]int64
		hist       analysis.History
	}
	sigs  map[int]*[2]sigSide
	names map[int]string
	tick  int
}

func newSim(f fleet, seed uint64) *sim {
	s := &sim{f: f, rng: rand.New(rand.NewPCG(seed, 7)), history: map[[2]int]bool{}, sigs: map[int]*[2]sigSide{}, names: map[int]string{}}
	sum := 0.0
	for i := range f.Signatures {
		sum += math.Pow(float64(i+1), -f.Zipf)
		s.cdf = append(s.cdf, sum)
	}
	for i := range s.cdf {
		s.cdf[i] /= sum
	}
	s.orgMult = make([]float64, f.Orgs)
	for o := range s.orgMult {
		s.orgMult[o] = math.Exp(0.5*s.rng.NormFloat64() - 0.125) // lognormal, mean 1
		if o < f.RingOrgs {
			s.orgMult[o] *= f.RingFlakiness
		}
	}
	n := f.Orgs * f.PipelinesPerOrg
	acc := 0.0
	s.newSide = make([]bool, n)
	s.broken = make([]bool, n)
	for p := range n {
		acc += math.Exp(s.rng.NormFloat64()) // busy and quiet pipelines
		s.activity = append(s.activity, acc)
		o := p / f.PipelinesPerOrg
		s.newSide[p] = o < f.RingOrgs && (f.ControlEvery == 0 || o%f.ControlEvery != 0)
	}
	// Exactly Broken of the new side's pipelines, so that 2 % means 2 %.
	var onNew []int
	for p, isNew := range s.newSide {
		if isNew {
			onNew = append(onNew, p)
		}
	}
	s.rng.Shuffle(len(onNew), func(i, j int) { onNew[i], onNew[j] = onNew[j], onNew[i] })
	for _, p := range onNew[:int(math.Round(f.Broken*float64(len(onNew))))] {
		s.broken[p] = true
	}
	for i := range s.sides {
		s.sides[i].pipes = map[int]bool{}
		s.sides[i].failOrgs = map[int]int64{}
	}
	// History: last week on the old version, everyone.
	for range f.HistoryJobs {
		p := s.pipeline()
		side := s.side(p)
		s.sides[side].hist.Jobs++
		if sig, failed := s.background(p); failed {
			s.sides[side].hist.FailedJobs++
			s.history[[2]int{sig, p}] = true
		}
	}
	return s
}

func (s *sim) side(p int) int {
	if s.newSide[p] {
		return 0
	}
	return 1
}

func (s *sim) pipeline() int {
	x := s.rng.Float64() * s.activity[len(s.activity)-1]
	p, _ := slices.BinarySearch(s.activity, x)
	return min(p, len(s.activity)-1)
}

// background draws one job's outcome on either version: failed or not,
// and with which signature.
func (s *sim) background(p int) (int, bool) {
	o := p / s.f.PipelinesPerOrg
	if s.rng.Float64() >= s.f.FailRate*s.orgMult[o] {
		return 0, false
	}
	if s.rng.Float64() < s.f.PrivateShare {
		return sigPrivate + p, true
	}
	i, _ := slices.BinarySearch(s.cdf, s.rng.Float64())
	return min(i, len(s.cdf)-1), true
}

func (s *sim) job(p int, sig int, failed bool) {
	side := s.side(p)
	sd := &s.sides[side]
	sd.pipes[p] = true
	sd.jobs++
	if !failed {
		return
	}
	o := p / s.f.PipelinesPerOrg
	sd.fail++
	sd.failOrgs[o]++
	c := s.sigs[sig]
	if c == nil {
		c = &[2]sigSide{}
		for i := range c {
			c[i] = sigSide{pipes: map[int]bool{}, orgsAll: map[int]bool{}, orgsEvid: map[int]int{}, evidencePi: map[int]bool{}}
		}
		s.sigs[sig] = c
		s.names[sig] = fmt.Sprint(sig)
	}
	ss := &c[side]
	ss.jobs++
	ss.orgsAll[o] = true
	if _, seen := ss.pipes[p]; seen {
		return
	}
	h := s.history[[2]int{sig, p}]
	ss.pipes[p] = h
	if !h {
		ss.evidence++
		ss.orgsEvid[o]++
	}
}

// step runs one tick of jobs.
func (s *sim) step() {
	f := s.f
	for range f.JobsPerTick {
		p := s.pipeline()
		sig, failed := s.background(p)
		if s.broken[p] && s.rng.Float64() < f.BrokenRate {
			sig, failed = sigBroken, true
		}
		if s.tick >= f.OutageFrom && s.tick < f.OutageFrom+f.OutageTicks && s.rng.Float64() < f.OutageRate {
			sig, failed = sigOutage, true
		}
		s.job(p, sig, failed)
	}
	if s.tick >= f.StormFrom && s.tick < f.StormFrom+f.StormTicks {
		p := (1 * f.PipelinesPerOrg) + 3 // org 1 is on the new side
		for range f.StormJobs {
			s.job(p, sigStorm, s.rng.Float64() < 0.9)
		}
	}
	s.tick++
}

func topCounts[K comparable, V int | int64](m map[K]V, k int) []int64 {
	var v []int64
	for _, c := range m {
		v = append(v, int64(c))
	}
	slices.Sort(v)
	slices.Reverse(v)
	return v[:min(k, len(v))]
}

// input is what the store would hand the analysis at this tick.
func (s *sim) input() analysis.RingInput {
	in := analysis.RingInput{Ring: 0}
	for i, side := range []*analysis.Side{&in.New, &in.Old} {
		sd := &s.sides[i]
		*side = analysis.Side{Pipelines: int64(len(sd.pipes)), Jobs: sd.jobs, FailedJobs: sd.fail, FailedOrgs: int64(len(sd.failOrgs)),
			TopOrgFailedJobs: topCounts(sd.failOrgs, 4), History: sd.hist}
	}
	ids := make([]int, 0, len(s.sigs))
	for id := range s.sigs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		c := s.sigs[id]
		sig := analysis.Signature{ID: s.names[id], Template: s.names[id]}
		for i, ss := range []*analysis.SignatureSide{&sig.New, &sig.Old} {
			cs := &c[i]
			*ss = analysis.SignatureSide{Pipelines: int64(len(cs.pipes)), Jobs: cs.jobs, Orgs: int64(len(cs.orgsAll)),
				PipelinesWithoutHistory: cs.evidence, OrgsWithoutHistory: int64(len(cs.orgsEvid)), TopOrgs: topCounts(cs.orgsEvid, 4)}
		}
		in.Signatures = append(in.Signatures, sig)
	}
	return in
}

// run checks the ring after every tick and returns the first failing
// decision, if any, and the tick it came at.
func (s *sim) run(tb testing.TB, p analysis.Params) (analysis.Decision, int, bool) {
	tb.Helper()
	var last analysis.Decision
	for range s.f.Ticks {
		s.step()
		d, err := analysis.Analyze(s.input(), p)
		if err != nil {
			tb.Fatalf("tick %d: %v", s.tick, err)
		}
		if d.Outcome == analysis.Fail {
			return d, s.tick, true
		}
		last = d
	}
	return last, s.tick, false
}

// An A/A stream — the new version identical to the old — checked on every
// tick must fail no more often than alpha. Alpha is 0.05 here so that the
// count means something over 40 runs: at most 2 expected if the bound
// is tight, and the assertion allows the binomial's 99th percentile (6).
func TestAAFalseAlarmRate(t *testing.T) {
	if testing.Short() {
		t.Skip("long simulation")
	}
	const seeds, alpha = 40, 0.05
	alarms := 0
	passes := 0
	for seed := range uint64(seeds) {
		s := newSim(baseFleet(), seed)
		d, tick, failed := s.run(t, analysis.Params{Alpha: alpha})
		if failed {
			alarms++
			t.Logf("seed %d: false alarm at tick %d: %s", seed, tick, d.Why)
		} else if d.Outcome == analysis.Pass {
			passes++
		}
	}
	t.Logf("%d false alarms in %d A/A runs of %d checks each at alpha %.2f; %d ended in pass", alarms, seeds, baseFleet().Ticks, alpha, passes)
	if alarms > 6 {
		t.Errorf("%d false alarms in %d runs at alpha %.2f, want at most 6", alarms, seeds, alpha)
	}
	if passes < seeds-alarms {
		t.Errorf("only %d of %d clean runs passed by the end: the exposure rule is too strict for this fleet", passes, seeds-alarms)
	}
}

// A new signature on 2 % of the new side's pipelines is found within a
// bounded number of events, at the default alpha, among the background.
func TestBrokenFeatureDetected(t *testing.T) {
	f := baseFleet()
	f.Orgs, f.RingOrgs = 600, 120 // ~1,080 new-side pipelines, ~22 of them hit
	f.Broken, f.BrokenRate = 0.02, 0.8
	for seed := range uint64(10) {
		s := newSim(f, 100+seed)
		d, tick, failed := s.run(t, analysis.Params{})
		if !failed {
			t.Errorf("seed %d: not detected in %d ticks: %s", seed, tick, d.Why)
			continue
		}
		regs := d.Regressions()
		if len(regs) == 0 || regs[0].ID != fmt.Sprint(sigBroken) {
			t.Errorf("seed %d: failed for the wrong reason: %s", seed, d.Why)
			continue
		}
		r := regs[0].Test
		t.Logf("seed %d: detected at tick %d after %d events (%d on the new side, %d orgs), log BF %.1f ≥ %.1f", seed, tick, r.Events, r.NewEvents, r.Orgs, r.LogE, r.LogThreshold)
		if r.Events > 20 {
			t.Errorf("seed %d: needed %d events, want at most 20", seed, r.Events)
		}
	}
}

// None of what makes cohorts differ is a regression of an identical
// version: ring-0 orgs flakier on both versions, one org's retry storm, an
// outage on both sides, and all three at once.
func TestCohortDifferencesAreNotRegressions(t *testing.T) {
	flaky := func(f *fleet) { f.RingFlakiness = 2.5 }
	storm := func(f *fleet) { f.StormFrom, f.StormTicks, f.StormJobs = 20, 60, 100 }
	outage := func(f *fleet) { f.OutageFrom, f.OutageTicks, f.OutageRate = 40, 20, 0.5 }
	tests := []struct {
		name string
		mod  []func(*fleet)
	}{
		{"ring-0 orgs flakier on both versions", []func(*fleet){flaky}},
		{"one org's retry storm", []func(*fleet){storm}},
		{"outage on both sides", []func(*fleet){outage}},
		{"all at once", []func(*fleet){flaky, storm, outage}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := baseFleet()
			for _, m := range tt.mod {
				m(&f)
			}
			for seed := range uint64(8) {
				s := newSim(f, 200+seed)
				d, tick, failed := s.run(t, analysis.Params{})
				if failed {
					t.Errorf("seed %d: an identical version failed at tick %d: %s", seed, tick, d.Why)
				}
			}
		})
	}
}
