package simulate_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/simulate"
)

// TestTableNotable: after the summary, the table lists the rollouts that
// miss a bar for imagegate (a worse one it did not halt, or halted after
// Ring 0; a false halt), each once with its seed and reason cut short, and
// none of the others.
func TestTableNotable(t *testing.T) {
	long := "health gate in ring 0 (canary): telemetry: " + strings.Repeat("x", 300)
	outcome := func(halted bool, ring int, minutes float64) []simulate.DetectorOutcome {
		ig := simulate.DetectorOutcome{Name: "imagegate", Halted: halted, Ring: -1, Censored: !halted}
		if halted {
			ig.Ring, ig.Minutes = ring, minutes
		}
		return []simulate.DetectorOutcome{ig, {Name: "threshold", Ring: -1, Censored: true}, {Name: "mann-whitney", Ring: -1, Censored: true}}
	}
	for _, tc := range []struct {
		name     string
		scenario string
		runs     []simulate.SeedResult
		want     string
	}{
		{"halted in Ring 0", simulate.ScenarioBrokenFeature, []simulate.SeedResult{
			{Seed: 1, Rollouts: []simulate.RolloutRun{{Label: "ubuntu-22.04", Worse: true, State: "rolled-back", Reason: "health gate in ring 0 (canary): _sqlite3",
				Detectors: outcome(true, 0, 12)}}},
		}, "none\n"},
		{"a miss, a late halt, a false halt", simulate.ScenarioTwoLabels, []simulate.SeedResult{
			{Seed: 7, Rollouts: []simulate.RolloutRun{
				{Label: "ubuntu-22.04", State: "completed", Ring: 4, LastVerdict: "ring 4: healthy", Detectors: outcome(false, 0, 0)},
				{Label: "ubuntu-24.04", Worse: true, State: "baking", Ring: 0, LastVerdict: "ring 0: telemetry: no regression yet",
					Detectors: outcome(false, 0, 0)},
			}},
			{Seed: 8, Rollouts: []simulate.RolloutRun{
				{Label: "ubuntu-22.04", State: "rolled-back", Ring: 0, Reason: long, LastVerdict: "ring 0: " + long, Detectors: outcome(true, 0, 31.25)},
				{Label: "ubuntu-24.04", Worse: true, State: "rolled-back", Ring: 1, Reason: "health gate in ring 1 (early):\n_sqlite3",
					Detectors: outcome(true, 1, 75)},
			}},
		}, "SEED  LABEL         WHAT         STATE        RING  MIN   REASON\n" +
			"7     ubuntu-24.04  not halted   baking       0     -     last verdict: ring 0: telemetry: no regression yet\n" +
			"8     ubuntu-22.04  false halt   rolled-back  0     31.3  " + long[:159] + "…\n" +
			"8     ubuntu-24.04  halted late  rolled-back  1     75    health gate in ring 1 (early): _sqlite3\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := simulate.DefaultParams()
			p.Scenario = tc.scenario
			rep := simulate.Summarize(p, tc.runs[0].Seed, tc.runs)
			var b bytes.Buffer
			if err := rep.WriteTable(&b); err != nil {
				t.Fatal(err)
			}
			const head = "imagegate's misses (worse rollouts not halted in Ring 0) and false halts:\n"
			_, got, ok := strings.Cut(b.String(), head)
			if !ok {
				t.Fatalf("no %q in\n%s", head, b.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("notable rollouts (-want +got)\n%s", diff)
			}
		})
	}
}
