package analysis_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/analysis"
)

// The formula reproduces examples worked by hand.
func TestLogBFWorkedExamples(t *testing.T) {
	tests := []struct {
		name     string
		y, n     int64
		rho, k   float64
		want     float64
		handWork string
	}{
		{
			name: "three of three on a tenth", y: 3, n: 3, rho: 0.1, k: 10, want: 50.0 / 11,
			// kρ = 1, k(1−ρ) = 9. B(1,9) = Γ(1)Γ(9)/Γ(10) = 1/9.
			// B(4,9) = Γ(4)Γ(9)/Γ(13) = 6·40320/479001600 = 1/1980.
			// BF = (1/1980)/(1/9) / 0.1³ = (9/1980)·1000 = 1000/220 = 50/11 ≈ 4.545.
			handWork: "B(4,9)/B(1,9)/0.1^3 = 50/11",
		},
		{
			name: "one of two on a half", y: 1, n: 2, rho: 0.5, k: 2, want: 2.0 / 3,
			// kρ = k(1−ρ) = 1: a uniform prior. B(1,1) = 1, B(2,2) = 1!·1!/3! = 1/6.
			// BF = (1/6)/1 / (0.5·0.5) = 4/6 = 2/3: an even split is evidence for the null.
			handWork: "B(2,2)/B(1,1)/0.25 = 2/3",
		},
		{
			name: "no events", y: 0, n: 0, rho: 0.3, k: 1, want: 1,
			handWork: "nothing seen, nothing learnt",
		},
		{
			name: "none of two on a half", y: 0, n: 2, rho: 0.5, k: 2, want: 4.0 / 3,
			// B(1,3) = Γ(1)Γ(3)/Γ(4) = 2/6 = 1/3; BF = (1/3)/0.25 = 4/3: evidence of
			// a share below ρ, which Analyze never calls a regression.
			handWork: "B(1,3)/B(1,1)/0.25 = 4/3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := math.Exp(analysis.LogBF(tt.y, tt.n, tt.rho, tt.k))
			if math.Abs(got-tt.want) > 1e-9*tt.want {
				t.Errorf("BF(y=%d, n=%d, ρ=%v, k=%v) = %.12g, want %.12g (%s)", tt.y, tt.n, tt.rho, tt.k, got, tt.want, tt.handWork)
			}
		})
	}
}

// ring builds an input with exposure on both sides and the signatures.
func ring(newPipes, oldPipes int64, sigs ...analysis.Signature) analysis.RingInput {
	return analysis.RingInput{Ring: 0,
		New:        analysis.Side{Pipelines: newPipes, Jobs: 10 * newPipes, FailedJobs: newPipes / 2, FailedOrgs: newPipes / 20},
		Old:        analysis.Side{Pipelines: oldPipes, Jobs: 10 * oldPipes, FailedJobs: oldPipes / 2, FailedOrgs: oldPipes / 20},
		Signatures: sigs}
}

// sig has y evidence pipelines in orgs orgs on the new side and x on the old.
func sig(id string, y, orgs, x int64) analysis.Signature {
	return analysis.Signature{ID: id, Template: "template of " + id,
		New: analysis.SignatureSide{Pipelines: y, Jobs: y, Orgs: orgs, PipelinesWithoutHistory: y, OrgsWithoutHistory: orgs},
		Old: analysis.SignatureSide{Pipelines: x, Jobs: x, Orgs: x, PipelinesWithoutHistory: x, OrgsWithoutHistory: x}}
}

func TestAnalyzeOutcomes(t *testing.T) {
	sqlite := "ModuleNotFoundError: No module named '_sqlite3'"
	tests := []struct {
		name       string
		in         analysis.RingInput
		p          analysis.Params
		want       analysis.Outcome
		regressed  []string
		whyContain string
	}{
		{"no data at all", analysis.RingInput{}, analysis.Params{}, analysis.Inconclusive, nil, "no pipeline has run the new version"},
		{"new side only", ring(1000, 0), analysis.Params{}, analysis.Inconclusive, nil, "nothing to be compared with"},
		{"old side only", ring(0, 9000), analysis.Params{}, analysis.Inconclusive, nil, "no pipeline has run the new version"},
		{"clean but thin", ring(100, 9000, sig("a", 2, 2, 150)), analysis.Params{}, analysis.Inconclusive, nil, "100 of the 500 pipelines needed"},
		{"clean with enough exposure", ring(500, 9000, sig("a", 8, 8, 150), sig("b", 0, 0, 3)), analysis.Params{}, analysis.Pass, nil, "no regression among 2 live signatures"},
		{"exposure rule follows its parameters", ring(250, 9000), analysis.Params{DetectShare: 0.04}, analysis.Pass, nil, "seen 10 times"},
		{"new signature in many orgs", ring(1000, 9000, sig(sqlite, 15, 12, 0), sig("a", 20, 20, 180)), analysis.Params{}, analysis.Fail, []string{sqlite}, "regressed in ring 0"},
		{"new signature in two orgs is not enough", ring(1000, 9000, sig(sqlite, 15, 2, 0)), analysis.Params{}, analysis.Pass, nil, "no regression"},
		{"two orgs are enough with minOrgs 2", ring(1000, 9000, sig(sqlite, 15, 2, 0)), analysis.Params{MinOrgs: 2}, analysis.Fail, []string{sqlite}, "15 pipelines in 2 orgs"},
		{"an improvement is never a regression", ring(1000, 9000, sig("fixed", 0, 0, 400)), analysis.Params{}, analysis.Pass, nil, "no regression"},
		{"too few events yet", ring(1000, 9000, sig(sqlite, 4, 4, 0)), analysis.Params{}, analysis.Pass, nil, "no regression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := analysis.Analyze(tt.in, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.want || !strings.Contains(d.Why, tt.whyContain) {
				t.Errorf("outcome %s (%s), want %s containing %q", d.Outcome, d.Why, tt.want, tt.whyContain)
			}
			var got []string
			for _, r := range d.Regressions() {
				got = append(got, r.ID)
			}
			if diff := cmp.Diff(tt.regressed, got); diff != "" {
				t.Errorf("regressions (-want +got):\n%s", diff)
			}
		})
	}
}

// The most affected orgs must not carry the evidence alone: 20 pipelines
// of one org and one each of two more are three orgs, but not a fleet-wide
// regression; spread over ten orgs they are.
func TestAnalyzeTopOrgsLeftOut(t *testing.T) {
	concentrated := sig("flaky", 22, 3, 0)
	concentrated.New.TopOrgs = []int64{20, 1, 1}
	spread := sig("broken", 22, 10, 0)
	spread.New.TopOrgs = []int64{3, 3, 2, 2}
	d, err := analysis.Analyze(ring(1000, 9000, concentrated, spread), analysis.Params{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range d.Signatures {
		got[s.ID] = s.Test.Regression
	}
	if diff := cmp.Diff(map[string]bool{"flaky": false, "broken": true}, got); diff != "" {
		t.Errorf("regressions (-want +got):\n%s", diff)
	}
}

// A break spread one pipeline per org keeps its evidence: five orgs with
// one pipeline each, where leaving out the two most affected orgs would
// keep three events, are five orgs counted once. Three orgs are still not a
// fleet-wide regression, however many pipelines each brings.
func TestAnalyzeOrgsCountedOnce(t *testing.T) {
	spread := sig("spread", 5, 5, 0)
	spread.New.TopOrgs = []int64{1, 1, 1, 1, 1}
	three := sig("three orgs", 3, 3, 0)
	three.New.TopOrgs = []int64{1, 1, 1}
	heavy := sig("three heavy orgs", 31, 3, 0)
	heavy.New.TopOrgs = []int64{29, 1, 1}
	d, err := analysis.Analyze(ring(300, 9000, spread, three, heavy), analysis.Params{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range d.Signatures {
		got[s.ID] = s.Test.Regression
		if s.ID == "spread" && !(s.Test.LogBFWithoutTopOrgs < s.Test.LogThreshold && s.Test.LogBFOrgsOnce >= s.Test.LogThreshold) {
			t.Errorf("spread: want the leave-out below the bar and the orgs-once count above it: %+v", s.Test)
		}
	}
	if diff := cmp.Diff(map[string]bool{"spread": true, "three orgs": false, "three heavy orgs": false}, got); diff != "" {
		t.Errorf("regressions (-want +got):\n%s", diff)
	}
}

// A ring whose pipelines each run more jobs than the fleet's (Ring 0's
// busy orgs) shows more of every rare signature: counts of a simulated
// Ring 0 at 48 minutes, a timeout on 63 of its 608 pipelines and 313 of
// the fleet's 9,939, are about their share of jobs, not a regression,
// while they are 2.9 times their share of pipelines. A new signature
// spread over enough orgs still is one.
func TestAnalyzeBusyPipelines(t *testing.T) {
	in := analysis.RingInput{
		New: analysis.Side{Pipelines: 608, Jobs: 2145, FailedJobs: 260, FailedOrgs: 90},
		Old: analysis.Side{Pipelines: 9939, Jobs: 16_900, FailedJobs: 1350, FailedOrgs: 2100},
	}
	timeout := sig("timeout", 63, 42, 313)
	timeout.New.TopOrgs = []int64{4, 4, 3, 3, 3, 3, 2, 2, 2, 2}
	broken := sig("broken", 9, 9, 0)
	broken.New.TopOrgs = []int64{1, 1, 1, 1, 1, 1, 1, 1, 1}
	in.Signatures = []analysis.Signature{timeout, broken}
	d, err := analysis.Analyze(in, analysis.Params{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range d.Signatures {
		got[s.ID] = s.Test.Regression
		if want := 2145.0 / (2145 + 16_900); math.Abs(s.Test.ExposureShare-want) > 1e-12 {
			t.Errorf("%s: exposure share %v, want the jobs' share %v", s.ID, s.Test.ExposureShare, want)
		}
	}
	if diff := cmp.Diff(map[string]bool{"timeout": false, "broken": true}, got); diff != "" {
		t.Errorf("regressions (-want +got):\n%s", diff)
	}
}

// The aggregate test fails a ring whose failure rate rose across many orgs,
// and not one whose excess is one org's retry storm.
func TestAnalyzeAggregate(t *testing.T) {
	worse := func(top []int64) analysis.RingInput {
		in := ring(1000, 9000)
		in.New = analysis.Side{Pipelines: 1000, Jobs: 20_000, FailedJobs: 3_000, FailedOrgs: 80, TopOrgFailedJobs: top}
		in.Old = analysis.Side{Pipelines: 9000, Jobs: 180_000, FailedJobs: 14_400, FailedOrgs: 700}
		return in
	}
	tests := []struct {
		name string
		in   analysis.RingInput
		want analysis.Outcome
	}{
		{"15% against 8% in many orgs", worse([]int64{60, 55}), analysis.Fail},
		{"the excess is one org's", worse([]int64{1500, 55}), analysis.Pass},
		{"as bad as the old side", func() analysis.RingInput {
			in := worse(nil)
			in.New.FailedJobs = 1600
			return in
		}(), analysis.Pass},
		{"ring 0 was that flaky before the rollout", func() analysis.RingInput {
			in := worse([]int64{60, 55})
			in.New.History = analysis.History{Jobs: 50_000, FailedJobs: 7_500}
			in.Old.History = analysis.History{Jobs: 400_000, FailedJobs: 32_000}
			return in
		}(), analysis.Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := analysis.Analyze(tt.in, analysis.Params{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.want {
				t.Errorf("outcome %s, want %s: %s (aggregate: %+v)", d.Outcome, tt.want, d.Why, d.Aggregate)
			}
		})
	}
}

// A signature the same pipelines already produced before the rollout is no
// evidence: 30 new-side pipelines with it, 28 of them with history.
func TestAnalyzeHistoryIsNoEvidence(t *testing.T) {
	s := sig("old news", 30, 25, 0)
	s.New.PipelinesWithoutHistory, s.New.OrgsWithoutHistory = 2, 2
	d, err := analysis.Analyze(ring(1000, 9000, s), analysis.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != analysis.Pass || len(d.Regressions()) != 0 {
		t.Errorf("outcome %s: %s", d.Outcome, d.Why)
	}
	if got := d.Signatures[0].Test.NewEvents; got != 2 {
		t.Errorf("new events %d, want the 2 without history", got)
	}
}

func TestAnalyzeRefusesImpossibleInput(t *testing.T) {
	tests := []struct {
		name string
		in   analysis.RingInput
		p    analysis.Params
		want string
	}{
		{"negative", func() analysis.RingInput { in := ring(10, 10); in.New.Jobs = -1; return in }(), analysis.Params{}, "new jobs is -1"},
		{"more evidence than pipelines", ring(10, 10, sig("x", 20, 3, 0)), analysis.Params{}, "exposed on the new side"},
		{"alpha", ring(10, 10), analysis.Params{Alpha: 2}, "alpha 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := analysis.Analyze(tt.in, tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if tt.p == (analysis.Params{}) && !errors.Is(err, analysis.ErrInvalidInput) {
				t.Errorf("error %v is not ErrInvalidInput", err)
			}
		})
	}
}

// BenchmarkAnalyze5000 is one ring's check with 5,000 live signatures.
func BenchmarkAnalyze5000(b *testing.B) {
	var sigs []analysis.Signature
	for i := range 5000 {
		y := int64(i % 17)
		sigs = append(sigs, sig(fmt.Sprintf("sig-%d", i), y, min(y, 5), int64(i%97)))
	}
	in := ring(2000, 40_000, sigs...)
	for b.Loop() {
		if _, err := analysis.Analyze(in, analysis.Params{}); err != nil {
			b.Fatal(err)
		}
	}
}

// A signature the ring's own orgs produce more than the fleet does (Ring
// 0's flaky tests) is read against its rate in the ring's control share,
// so a long bake does not pile it up into a regression; a signature the
// control share never saw, a broken feature, keeps all its power. The
// counts are those of a clean simulated rollout that was halted after two
// hours in Ring 0 before the control share was read.
func TestAnalyzeControlShare(t *testing.T) {
	base := analysis.RingInput{
		New: analysis.Side{Pipelines: 700, Jobs: 2800, FailedJobs: 330, FailedOrgs: 100},
		Old: analysis.Side{Pipelines: 9300, Jobs: 37_000, FailedJobs: 2960, FailedOrgs: 2500},
	}
	timeout := sig("timeout", 72, 53, 371)
	timeout.New.TopOrgs = []int64{4, 3, 3, 2, 2}
	broken := sig("broken", 10, 9, 0)
	broken.New.TopOrgs = []int64{2, 1, 1, 1, 1}
	tests := []struct {
		name    string
		control int64 // control-share pipelines, and timeout's evidence there
		inCtl   int64
		ctlJobs int64 // timeout's failed jobs in the control share
		want    map[string]bool
	}{
		{"without a control share", 0, 0, 0, map[string]bool{"timeout": true, "broken": true}},
		{"control share shows the same rate", 78, 8, 8, map[string]bool{"timeout": false, "broken": true}},
		{"too few control events to judge", 78, 2, 2, map[string]bool{"timeout": true, "broken": true}},
		// A clean Ring 0 after four hours (a small fleet's seed 1): the
		// control share's pipelines mostly had the flaky test in history,
		// so only 2 are evidence, but its jobs show the ring's rate.
		{"control jobs show the rate its new pipelines do not", 78, 2, 40, map[string]bool{"timeout": false, "broken": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			in.Control = analysis.Side{Pipelines: tt.control, Jobs: 4 * tt.control}
			tm := timeout
			tm.Control = analysis.SignatureSide{Pipelines: tt.inCtl, Jobs: tt.ctlJobs, Orgs: tt.inCtl,
				PipelinesWithoutHistory: tt.inCtl, OrgsWithoutHistory: tt.inCtl}
			in.Signatures = []analysis.Signature{tm, broken}
			d, err := analysis.Analyze(in, analysis.Params{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, s := range d.Signatures {
				got[s.ID] = s.Test.Regression
				if s.ID == "broken" && s.Test.ControlRatio != 0 {
					t.Errorf("broken: control ratio %v from a signature the control share never saw", s.Test.ControlRatio)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("regressions (-want +got):\n%s\n%+v", diff, d.Signatures)
			}
		})
	}
}
