package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// BenchAppendEvents appends batches of batch new events per iteration and
// reports events/s. Every batch is acknowledged durably, as the ingest
// endpoint needs before its 2xx.
func BenchAppendEvents(b *testing.B, s rollout.Store, batch int) {
	ctx := context.Background()
	evs := make([]rollout.JobEvent, batch)
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		for j := range evs {
			evs[j] = rollout.JobEvent{
				JobID: fmt.Sprintf("job-%d-%d", i, j), Org: fmt.Sprintf("org-%d", j%50), Label: "ubuntu-22.04",
				Version: fmt.Sprintf("v%d", i%3), Ring: j % 3, Outcome: rollout.OutcomeSucceeded,
				StartedAt: T0.Add(time.Duration(i*batch+j) * time.Millisecond), DurationMs: 60000,
			}
		}
		n, err := s.AppendEvents(ctx, evs)
		if err != nil {
			b.Fatal(err)
		}
		if n != batch {
			b.Fatalf("batch %d: %d new events, want %d", i, n, batch)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
}

// BenchAssignRun records a new workflow run per iteration (the resolve
// hot path's only store write).
func BenchAssignRun(b *testing.B, s rollout.Store) {
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if _, err := s.AssignRun(ctx, fmt.Sprint("run-", i), "ubuntu-22.04", "v1", T0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}

// BenchAssignRunParallel is BenchAssignRun from many goroutines, as a
// server under load calls it.
func BenchAssignRunParallel(b *testing.B, s rollout.Store) {
	benchAssignRuns(b, s, func(n int64) int64 { return n })
}

// BenchAssignRunParallelStored is BenchAssignRunParallel where every
// other call is for a run assigned some thousand calls earlier, as when
// several replicas see the jobs of one run: half the runs of a group are
// stored already.
func BenchAssignRunParallelStored(b *testing.B, s rollout.Store) {
	benchAssignRuns(b, s, func(n int64) int64 {
		if n%2 == 0 && n > 1000 {
			return n - 999
		}
		return n
	})
}

// benchAssignRuns assigns run runOf(n) on the n-th call, from 32
// goroutines per CPU.
func benchAssignRuns(b *testing.B, s rollout.Store, runOf func(n int64) int64) {
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AssignRun(ctx, fmt.Sprint("run-", runOf(next.Add(1))), "ubuntu-22.04", "v1", T0); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}
