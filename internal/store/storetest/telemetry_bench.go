package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Fleet shapes generated observations: how many pipelines, orgs and live
// signatures events spread over, and how often jobs fail.
type Fleet struct {
	Pipelines, Orgs, Signatures int
	FailRate                    float64
}

// DefaultFleet is a mid-sized installation.
var DefaultFleet = Fleet{Pipelines: 20_000, Orgs: 2_000, Signatures: 5_000, FailRate: 0.08}

// Observations makes n observations of rollout rolloutID (label img, v2
// replacing v1) in ring 0, as the server would have classified them:
// 10% on the new version, 5% control, the rest the old fleet; failures
// spread over f.Signatures signatures, the frequent ones more often.
func (f Fleet) Observations(rng *rand.Rand, prefix, rolloutID string, n int, at time.Time) []rollout.Observation {
	out := make([]rollout.Observation, n)
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(f.Signatures-1))
	for i := range out {
		o := &out[i]
		p := rng.IntN(f.Pipelines)
		o.JobEvent = rollout.JobEvent{JobID: fmt.Sprintf("%s-%d", prefix, i), Org: fmt.Sprintf("org-%d", p%f.Orgs), Label: "img",
			Pipeline: fmt.Sprintf("org-%d/repo-%d/.github/workflows/ci.yml", p%f.Orgs, p), Outcome: rollout.OutcomeSucceeded,
			StartedAt: at.Add(time.Duration(i) * time.Millisecond), DurationMs: 60_000}
		o.ReceivedAt, o.RolloutID, o.Stage = o.StartedAt, rolloutID, 0
		switch c := rng.Float64(); {
		case c < 0.10:
			o.Version, o.Cohort = "v2", rollout.CohortNew
		case c < 0.15:
			o.Version, o.Cohort = "v1", rollout.CohortControl
		default:
			o.Version, o.Cohort, o.Ring = "v1", rollout.CohortOld, 1
		}
		if rng.Float64() < f.FailRate {
			s := zipf.Uint64()
			o.Outcome = rollout.OutcomeFailed
			o.Signature = fmt.Sprintf("sig-%05d", s)
			o.Template = fmt.Sprintf("Error: step <*> failed with code %d", s)
			o.ErrorText = fmt.Sprintf("Run step\nError: step %d failed with code %d\n", rng.IntN(100), s)
			o.Example = o.ErrorText
		}
	}
	return out
}

// BenchAppendObservations appends batches of batch new observations per
// iteration, with pipelines and signatures, and reports events/s.
func BenchAppendObservations(b *testing.B, s rollout.Store, batch int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		obs := DefaultFleet.Observations(rng, fmt.Sprint("b", i), "r-bench", batch, T0)
		n, err := s.AppendObservations(ctx, obs)
		if err != nil {
			b.Fatal(err)
		}
		if n != batch {
			b.Fatalf("batch %d: %d new events, want %d", i, n, batch)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
}

// SeedTelemetry stores a rollout r-bench of img (v1 → v2) and events
// observations of its ring 0, in batches through AppendObservations.
func SeedTelemetry(tb testing.TB, s rollout.Store, events int, f Fleet) rollout.Rollout {
	tb.Helper()
	ctx := context.Background()
	MustVersion(tb, s, "img", "v1")
	MustVersion(tb, s, "img", "v2")
	r := newRollout("img", "v2")
	r.ID, r.FromVersion = "r-bench", "v1"
	if err := s.CreateRollout(ctx, &r, nil, Audit("rollout.start", "rollout/r-bench")); err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	// Last week's history of the old version: what "already produced it"
	// is checked against.
	hist := f.Observations(rng, "hist", "", events/10, T0.Add(-3*24*time.Hour))
	for i := range hist {
		hist[i].Version, hist[i].RolloutID, hist[i].Cohort, hist[i].Stage = "v1", "", "", -1
	}
	const chunk = 10_000
	for _, all := range [][]rollout.Observation{hist, nil} {
		for done := 0; ; done += chunk {
			var batch []rollout.Observation
			if all != nil {
				if done >= len(all) {
					break
				}
				batch = all[done:min(done+chunk, len(all))]
			} else {
				if done >= events {
					break
				}
				batch = f.Observations(rng, fmt.Sprint("e", done), r.ID, min(chunk, events-done), T0.Add(time.Duration(done)*time.Millisecond))
			}
			if _, err := s.AppendObservations(ctx, batch); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return r
}

// BenchRingTelemetry reads ring 0 of a seeded rollout per iteration.
func BenchRingTelemetry(b *testing.B, s rollout.Store, r rollout.Rollout) {
	ctx := context.Background()
	t, err := s.RingTelemetry(ctx, r.ID, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(t.Signatures)), "signatures")
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.RingTelemetry(ctx, r.ID, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchAnalysisTick runs the telemetry gate's check of ring 0 of a seeded
// rollout per iteration: the store read, the mapping and the decision
// over every live signature, as a controller tick does. It reports the
// CPU time of the process per check beside the wall time, since the
// machine is shared.
func BenchAnalysisTick(b *testing.B, s rollout.Store, r rollout.Rollout) {
	ctx := context.Background()
	h := rollout.NewTelemetryHealth(s, rollout.AnalysisPolicies{}, nil)
	res, err := h.Check(ctx, r, 0)
	if err != nil {
		b.Fatal(err)
	}
	a, err := h.AnalyzeRing(ctx, r, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("decision: %s", res.Reason)
	b.ReportMetric(float64(a.Decision.Hypotheses-1), "signatures")
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.Check(ctx, r, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}
