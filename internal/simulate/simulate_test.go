package simulate_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/simulate"
	"github.com/imagegate/imagegate/internal/testenv"
)

// smallFleet is the CI size of the fleet: a few hundred orgs for
// sixteen simulated hours with short bake times, so that a clean rollout
// passes all five rings.
func smallFleet(scenario string) simulate.Params {
	p := simulate.DefaultParams()
	p.Scenario = scenario
	p.Orgs, p.Ring0Orgs, p.JobsPerHour = 600, 12, 5000
	p.HistoryHours, p.Hours = 4, 16
	p.BakeTimes = []time.Duration{2 * time.Hour, 2 * time.Hour, 2 * time.Hour, 2 * time.Hour, time.Hour}
	return p
}

// bar is one outcome the issue asks of imagegate's detector (the
// telemetry analysis, simulate.HealthName), asserted at the CI size.
type bar struct {
	what string
	ok   func(d simulate.DetectorSummary, seeds int) bool
}

var (
	haltsInRing0 = bar{"halts the worse rollout in Ring 0 in every seed",
		func(d simulate.DetectorSummary, seeds int) bool { return d.HaltedInRing0 == seeds }}
	fast = bar{"median detection under 30 minutes after Ring 0",
		func(d simulate.DetectorSummary, _ int) bool {
			return d.DetectMinutes.Median != nil && *d.DetectMinutes.Median < 30
		}}
	cheap = bar{"median failed jobs before the halt under 25",
		func(d simulate.DetectorSummary, _ int) bool {
			return d.FailedJobsBeforeHalt.Median != nil && *d.FailedJobsBeforeHalt.Median < 25
		}}
	noFalseHalts = bar{"no false halts",
		func(d simulate.DetectorSummary, _ int) bool { return d.FalseHalts == 0 }}
)

func TestScenarios(t *testing.T) {
	seeds := 3
	if raceEnabled {
		seeds = 1
	}
	for _, tc := range []struct {
		scenario string
		bars     []bar
	}{
		{simulate.ScenarioClean, []bar{noFalseHalts}},
		{simulate.ScenarioBrokenFeature, []bar{haltsInRing0, fast, cheap}},
		{simulate.ScenarioSlowDegradation, nil},
		{simulate.ScenarioOutage, []bar{noFalseHalts}},
		{simulate.ScenarioRetryStorm, []bar{noFalseHalts}},
		{simulate.ScenarioImprovement, []bar{noFalseHalts}},
		{simulate.ScenarioTextDrift, []bar{haltsInRing0, fast, cheap}},
		{simulate.ScenarioTwoLabels, []bar{haltsInRing0, fast, cheap, noFalseHalts}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			t.Parallel()
			p := smallFleet(tc.scenario)
			rep, results, err := simulate.Run(t.Context(), p, simulate.Options{Seeds: seeds, SeedStart: 1, Open: simulate.SQLiteOpener(t.TempDir())})
			if err != nil {
				t.Fatal(err)
			}
			var table bytes.Buffer
			rep.WriteTable(&table)
			t.Logf("\n%s", table.String())
			checkInvariants(t, p, rep, results)
			ig := rep.Detectors[0]
			for _, b := range tc.bars {
				if !b.ok(ig, seeds) {
					t.Errorf("imagegate (%s gate) does not meet the bar %q: %+v", simulate.HealthName, b.what, ig)
				}
			}
		})
	}
}

// checkInvariants holds for every scenario whatever the gates do: only a
// worse new version causes failures, every
// detector reports on every seed, and the fleet has the shape asked for.
func checkInvariants(t *testing.T, p simulate.Params, rep simulate.Report, results []simulate.SeedResult) {
	t.Helper()
	var names []string
	for _, d := range rep.Detectors {
		names = append(names, d.Name)
		if d.Runs != len(results) {
			t.Errorf("%s: %d runs, want %d", d.Name, d.Runs, len(results))
		}
	}
	if diff := cmp.Diff([]string{"imagegate", "threshold", "mann-whitney"}, names); diff != "" {
		t.Errorf("detectors (-want +got)\n%s", diff)
	}
	wantRollouts := 1
	if p.Scenario == simulate.ScenarioTwoLabels {
		wantRollouts = 2
	}
	for _, res := range results {
		if len(res.Rollouts) != wantRollouts {
			t.Fatalf("seed %d: %d rollouts, want %d", res.Seed, len(res.Rollouts), wantRollouts)
		}
		if res.Fleet.Orgs != p.Orgs || res.Fleet.Ring0Pipelines == 0 || res.Jobs == 0 || res.Events == 0 {
			t.Errorf("seed %d: fleet %+v with %d jobs and %d events", res.Seed, res.Fleet, res.Jobs, res.Events)
		}
		for i, rr := range res.Rollouts {
			worse := p.Scenario == simulate.ScenarioBrokenFeature || p.Scenario == simulate.ScenarioSlowDegradation ||
				p.Scenario == simulate.ScenarioTextDrift || (p.Scenario == simulate.ScenarioTwoLabels && i == 1)
			if rr.Worse != worse {
				t.Errorf("seed %d %s: worse = %v, want %v", res.Seed, rr.Label, rr.Worse, worse)
			}
			if !worse && rr.CausedFailures > 0 {
				t.Errorf("seed %d %s: a new version that is not worse caused %d failures", res.Seed, rr.Label, rr.CausedFailures)
			}
			for _, d := range rr.Detectors {
				if d.Halted == d.Censored && rr.Worse {
					t.Errorf("seed %d %s: %s halted = %v and censored = %v", res.Seed, rr.Label, d.Name, d.Halted, d.Censored)
				}
				if d.FailedJobs > rr.CausedFailures {
					t.Errorf("seed %d %s: %s counts %d failed jobs before its halt of %d caused", res.Seed, rr.Label, d.Name, d.FailedJobs, rr.CausedFailures)
				}
			}
		}
	}
}

// TestDryRun lets imagegate's gate record instead of act: the broken
// version keeps running, so it causes failures, and every detector that
// halts sees the same stream.
func TestDryRun(t *testing.T) {
	p := smallFleet(simulate.ScenarioBrokenFeature)
	p.Hours, p.DryRun = 8, true
	rep, res, err := simulate.Run(t.Context(), p, simulate.Options{Seeds: 2, SeedStart: 1, Open: simulate.SQLiteOpener(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, p, rep, res)
	for _, r := range res {
		rr := r.Rollouts[0]
		if rr.State == "rolled-back" || rr.State == "halted" {
			t.Errorf("seed %d: a dry run was %s", r.Seed, rr.State)
		}
		if rr.CausedFailures == 0 {
			t.Errorf("seed %d: the broken version ran for %d minutes without causing a failure", r.Seed, r.Minutes)
		}
	}
	if ig := rep.Detectors[0]; ig.Halted == 0 {
		t.Errorf("imagegate's gate never recorded a halt in a dry run: %+v", ig)
	}
}

// TestReproducible runs one seed twice, and two seeds in parallel and one
// at a time: the figures must not change.
func TestReproducible(t *testing.T) {
	p := smallFleet(simulate.ScenarioBrokenFeature)
	p.Hours = 8
	open := simulate.SQLiteOpener(t.TempDir())
	run := func(par int) ([]byte, simulate.Report) {
		rep, res, err := simulate.Run(t.Context(), p, simulate.Options{Seeds: 2, SeedStart: 5, Parallel: par, Open: open})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		rep.ElapsedSeconds = 0
		return b, rep
	}
	a, ra := run(1)
	b, rb := run(2)
	if diff := cmp.Diff(string(a), string(b)); diff != "" {
		t.Errorf("seed results differ between runs (-first +second)\n%s", diff)
	}
	if diff := cmp.Diff(ra, rb); diff != "" {
		t.Errorf("reports differ (-first +second)\n%s", diff)
	}
}

// TestPostgres runs a short scenario on PostgreSQL: the store is a flag.
func TestPostgres(t *testing.T) {
	dsn := testenv.RequirePostgres(t)
	p := smallFleet(simulate.ScenarioBrokenFeature)
	p.Orgs, p.JobsPerHour, p.Hours = 300, 2000, 6
	rep, res, err := simulate.Run(t.Context(), p, simulate.Options{Seeds: 1, SeedStart: 1, Open: simulate.PostgresOpener(dsn)})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, p, rep, res)
}

func TestInvalidParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*simulate.Params)
	}{
		{"unknown scenario", func(p *simulate.Params) { p.Scenario = "meteor" }},
		{"unknown feature", func(p *simulate.Params) { p.Feature = "cobol" }},
		{"background above 1", func(p *simulate.Params) { p.Background = 1.5 }},
		{"history longer than the run", func(p *simulate.Params) { p.HistoryHours = 200 }},
		{"four bake times", func(p *simulate.Params) { p.BakeTimes = p.BakeTimes[:4] }},
		{"tick in seconds", func(p *simulate.Params) { p.TickEvery = 90 * time.Second }},
	} {
		p := simulate.DefaultParams()
		tc.edit(&p)
		if _, _, err := simulate.Run(t.Context(), p, simulate.Options{Seeds: 1, Open: simulate.SQLiteOpener(t.TempDir())}); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
