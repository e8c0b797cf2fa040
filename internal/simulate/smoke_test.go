package simulate_test

import (
	"os"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/simulate"
)

func TestSmoke(t *testing.T) {
	p := simulate.Params{Scenario: os.Getenv("SC"), JobsPerHour: 3000, Orgs: 300, Ring0Orgs: 8, HistoryHours: 6, Hours: 30,
		BakeTimes: []time.Duration{2 * time.Hour, 4 * time.Hour, 4 * time.Hour, 4 * time.Hour, 4 * time.Hour}}
	rep, res, err := simulate.Run(t.Context(), p, simulate.Options{Seeds: 4, SeedStart: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteTable(os.Stdout)
	for _, r := range res {
		t.Logf("seed %d: %d jobs, %d events, %d min, %s (ingest %s, tick %s) %+v", r.Seed, r.Jobs, r.Events, r.Minutes, r.Elapsed, r.Ingest, r.Tick, r.Rollouts)
	}
}
