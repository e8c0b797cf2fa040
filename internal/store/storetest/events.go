package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Events makes n events of label/version spread over rings 0-2 and the
// three outcomes, starting at T0 one second apart, with IDs prefix-0...
func Events(prefix, label, version string, n int) []rollout.JobEvent {
	outcomes := []string{rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled, rollout.OutcomeSucceeded}
	evs := make([]rollout.JobEvent, n)
	for i := range evs {
		evs[i] = rollout.JobEvent{
			JobID: fmt.Sprintf("%s-%d", prefix, i), Org: fmt.Sprintf("org-%d", i%7), Label: label, Version: version,
			Ring: i % 3, Outcome: outcomes[i%4], StartedAt: T0.Add(time.Duration(i) * time.Second),
			DurationMs: int64(1000 + i), ErrorText: map[bool]string{true: "exit 1"}[i%4 == 1],
		}
	}
	return evs
}

func testEvents(t *testing.T, s rollout.Store) {
	evs := Events("job", "img", "v1", 12)
	n, err := s.AppendEvents(ctx(t), evs[:8])
	must(t, err)
	if n != 8 {
		t.Errorf("first append stored %d new events, want 8", n)
	}
	// A retry that overlaps, with a duplicate inside the batch.
	n, err = s.AppendEvents(ctx(t), append(evs[6:], evs[11]))
	must(t, err)
	if n != 4 {
		t.Errorf("overlapping retry stored %d new events, want 4", n)
	}
	n, err = s.AppendEvents(ctx(t), nil)
	if err != nil || n != 0 {
		t.Errorf("empty append: %d, %v", n, err)
	}
	must(t, err)
	other := Events("other", "img", "v2", 5)
	_, err = s.AppendEvents(ctx(t), other)
	must(t, err)

	// i = 0..11: outcomes S F C S S F C S S F C S, rings 0 1 2 0 1 2 ...
	for _, tc := range []struct {
		version string
		ring    int
		since   time.Time
		want    rollout.JobCounts
	}{
		{"v1", -1, time.Time{}, rollout.JobCounts{Total: 12, Succeeded: 6, Failed: 3, Canceled: 3}},
		{"v1", 0, time.Time{}, rollout.JobCounts{Total: 4, Succeeded: 2, Failed: 1, Canceled: 1}},
		{"v1", -1, T0.Add(6 * time.Second), rollout.JobCounts{Total: 6, Succeeded: 3, Failed: 1, Canceled: 2}},
		{"v1", 2, T0.Add(6 * time.Second), rollout.JobCounts{Total: 2, Succeeded: 2}},
		{"v1", 1, T0.Add(time.Hour), rollout.JobCounts{}},
		{"v2", -1, time.Time{}, rollout.JobCounts{Total: 5, Succeeded: 3, Failed: 1, Canceled: 1}},
		{"v3", -1, time.Time{}, rollout.JobCounts{}},
	} {
		got, err := s.CountJobs(ctx(t), "img", tc.version, tc.ring, tc.since)
		must(t, err)
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("CountJobs(%s, ring %d, since %v) (-want +got):\n%s", tc.version, tc.ring, tc.since, d)
		}
	}
	bad := []rollout.JobEvent{evs[0], {Label: "img"}}
	_, err = s.AppendEvents(ctx(t), bad)
	wantErr(t, "an event without jobId", err, rollout.ErrInvalid)
}

// testEventsConcurrent has ten runners retry the same batches at once, in
// different orders: every event is stored once and counted new once.
func testEventsConcurrent(t *testing.T, s rollout.Store) {
	evs := Events("job", "img", "v1", 500)
	const workers = 10
	var wg sync.WaitGroup
	added := make([]int, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for b := range 5 {
				batch := (b + w) % 5
				chunk := append([]rollout.JobEvent(nil), evs[batch*100:(batch+1)*100]...)
				if w%2 == 1 {
					for i, j := 0, len(chunk)-1; i < j; i, j = i+1, j-1 {
						chunk[i], chunk[j] = chunk[j], chunk[i]
					}
				}
				n, err := s.AppendEvents(context.Background(), chunk)
				if err != nil {
					errs[w] = err
					return
				}
				added[w] += n
			}
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	total := 0
	for _, n := range added {
		total += n
	}
	if total != 500 {
		t.Errorf("concurrent retries reported %d new events in all, want 500", total)
	}
	c, err := s.CountJobs(ctx(t), "img", "v1", -1, time.Time{})
	must(t, err)
	if c.Total != 500 {
		t.Errorf("stored %d events, want 500", c.Total)
	}
}
