package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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

// MinuteEvents makes n events of label, versions v1 and v2, in rings 0-2,
// with the three outcomes and one other (counted in Total only), that
// started over ten minutes from T0 at microsecond offsets, every tenth
// on a whole second and every thirtieth on a minute's start; received
// up to an hour after they started. Every seventh has no pipeline.
func MinuteEvents(rng *rand.Rand, prefix, label string, n int) []rollout.Observation {
	outcomes := []string{rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled, "timed_out", rollout.OutcomeSucceeded}
	out := make([]rollout.Observation, n)
	for i := range out {
		at := T0.Add(time.Duration(rng.Int64N(int64(10*time.Minute/time.Microsecond))) * time.Microsecond)
		switch {
		case i%30 == 0:
			at = at.Truncate(time.Minute)
		case i%10 == 0:
			at = at.Truncate(time.Second)
		}
		o := &out[i]
		o.JobEvent = rollout.JobEvent{JobID: fmt.Sprintf("%s-%d", prefix, i), Org: fmt.Sprintf("org-%d", i%5), Label: label,
			Version: []string{"v1", "v2"}[rng.IntN(2)], Ring: rng.IntN(3), Outcome: outcomes[rng.IntN(len(outcomes))],
			StartedAt: at, DurationMs: 1000}
		if i%7 != 0 {
			o.Pipeline = fmt.Sprintf("org-%d/repo-%d/.github/workflows/ci.yml", i%5, i%11)
		}
		if o.Outcome == rollout.OutcomeFailed {
			o.ErrorText = "exit 1"
		}
		o.ReceivedAt, o.Stage = at.Add(time.Duration(rng.Int64N(int64(time.Hour)))), -1
	}
	return out
}

// UpgradeJobMinutes checks migration 0016's backfill of job_minutes: it
// appends MinuteEvents through both write paths to the store open gives,
// closes it, has rollback take the database back to the schema before
// 0016 (as an older imagegate left it, with the events), opens it again,
// which migrates it, and compares CountJobs with the events; then again
// after more events are appended on top of the backfilled rows.
func UpgradeJobMinutes(t *testing.T, open func() rollout.Store, rollback func()) {
	t.Helper()
	s := open()
	obs := MinuteEvents(rand.New(rand.NewPCG(16, 2)), "u", "img", 400)
	stored := make([]rollout.JobEvent, len(obs))
	for i, o := range obs {
		stored[i] = o.JobEvent
	}
	if _, err := s.AppendObservations(t.Context(), obs[:200]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvents(t.Context(), stored[200:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rollback()
	s = open()
	CheckCountJobs(t, s, "img", stored)
	more := MinuteEvents(rand.New(rand.NewPCG(16, 3)), "v", "img", 100)
	if _, err := s.AppendObservations(t.Context(), more); err != nil {
		t.Fatal(err)
	}
	for _, o := range more {
		stored = append(stored, o.JobEvent)
	}
	CheckCountJobs(t, s, "img", stored)
}

// CheckCountJobs compares CountJobs of label's versions v1 and v2 in every
// ring (and -1) with counts computed from stored, the events stored (each
// job once), at sinces before, between and on the events' starts: every
// minute's start and middle, each event's start and a microsecond after.
func CheckCountJobs(t *testing.T, s rollout.EventStore, label string, stored []rollout.JobEvent) {
	t.Helper()
	sinces := []time.Time{{}, T0.Add(-time.Hour), T0.Add(time.Hour)}
	for m := range 11 {
		start := T0.Add(time.Duration(m) * time.Minute)
		sinces = append(sinces, start, start.Add(-time.Microsecond), start.Add(30*time.Second+time.Nanosecond))
	}
	for i, e := range stored {
		if i%5 == 0 {
			sinces = append(sinces, e.StartedAt, e.StartedAt.Add(time.Microsecond))
		}
	}
	for _, version := range []string{"v1", "v2"} {
		for ring := -1; ring <= 3; ring++ {
			for _, since := range sinces {
				var want rollout.JobCounts
				for _, e := range stored {
					if e.Version != version || (ring >= 0 && e.Ring != ring) || e.StartedAt.Before(since.Truncate(time.Microsecond)) {
						continue
					}
					want.Total++
					switch e.Outcome {
					case rollout.OutcomeSucceeded:
						want.Succeeded++
					case rollout.OutcomeFailed:
						want.Failed++
					case rollout.OutcomeCanceled:
						want.Canceled++
					}
				}
				got, err := s.CountJobs(context.Background(), label, version, ring, since)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("CountJobs(%s, ring %d, since %s) = %+v, want %+v (from the events)", version, ring,
						since.Format(time.RFC3339Nano), got, want)
				}
			}
		}
	}
}

// testCountJobsMinutes appends events across minutes, rings and outcomes
// through both write paths, in batches that retry the previous one's
// jobs, repeat jobs within themselves (the first of a batch is stored)
// and re-report stored jobs with other outcomes, rings and starts; then
// again from several writers at once. CountJobs equals the count of the
// events stored.
func testCountJobsMinutes(t *testing.T, s rollout.Store) {
	rng := rand.New(rand.NewPCG(16, 1))
	obs := MinuteEvents(rng, "m", "img", 600)
	stored := map[string]rollout.JobEvent{}
	var order []rollout.JobEvent
	const batch = 50
	for b := 0; b*batch < len(obs); b++ {
		chunk := slices.Clone(obs[b*batch : (b+1)*batch])
		if b > 0 {
			chunk = append(chunk, obs[b*batch-10:b*batch]...) // a retry's overlap
		}
		// The same job twice in one batch, once reported again otherwise:
		// the first in the batch is stored.
		other := chunk[17]
		other.Outcome, other.StartedAt = rollout.OutcomeFailed, other.StartedAt.Add(-3*time.Minute)
		chunk = append(chunk, chunk[3], other)
		if b > 1 {
			// A job stored two batches ago, reported again otherwise.
			o := obs[(b-2)*batch+5]
			o.Outcome, o.Ring, o.StartedAt = rollout.OutcomeCanceled, (o.Ring+1)%3, o.StartedAt.Add(7*time.Minute)
			chunk = append(chunk, o)
		}
		rng.Shuffle(len(chunk), func(i, j int) { chunk[i], chunk[j] = chunk[j], chunk[i] })
		want := 0
		for _, o := range chunk {
			if _, ok := stored[o.JobID]; !ok {
				stored[o.JobID] = o.JobEvent
				order = append(order, o.JobEvent)
				want++
			}
		}
		var n int
		var err error
		if b%2 == 0 {
			evs := make([]rollout.JobEvent, len(chunk))
			for i, o := range chunk {
				evs[i] = o.JobEvent
			}
			n, err = s.AppendEvents(ctx(t), evs)
		} else {
			n, err = s.AppendObservations(ctx(t), chunk)
		}
		must(t, err)
		if n != want {
			t.Errorf("batch %d stored %d new events, want %d", b, n, want)
		}
		if b == 5 {
			CheckCountJobs(t, s, "img", order)
		}
	}
	CheckCountJobs(t, s, "img", order)

	more := MinuteEvents(rng, "c", "img", 400)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range 4 {
		wg.Go(func() {
			for b := range 8 {
				chunk := more[((b+w)%8)*50 : ((b+w)%8+1)*50]
				var err error
				if w%2 == 0 {
					_, err = s.AppendObservations(context.Background(), chunk)
				} else {
					evs := make([]rollout.JobEvent, len(chunk))
					for i, o := range chunk {
						evs[i] = o.JobEvent
					}
					_, err = s.AppendEvents(context.Background(), evs)
				}
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	for _, o := range more {
		order = append(order, o.JobEvent)
	}
	CheckCountJobs(t, s, "img", order)
}
