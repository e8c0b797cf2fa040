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

func testAssignRun(t *testing.T, s rollout.Store) {
	const n = 20
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = s.AssignRun(context.Background(), "run-1", "img", fmt.Sprint("v", i), T0)
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("concurrent AssignRun answered %q and %q: first write must win for everyone", got[0], got[i])
		}
	}
	winner := got[0]
	if v, err := s.AssignRun(ctx(t), "run-1", "img", "v-late", T0.Add(time.Minute)); err != nil || v != winner {
		t.Errorf("later AssignRun = %q, %v; want %q", v, err, winner)
	}
	if v, err := s.AssignRun(ctx(t), "run-1", "other", "v-other", T0); err != nil || v != "v-other" {
		t.Errorf("AssignRun of the same run for another label = %q, %v; want its own version", v, err)
	}
	must(t, s.ForgetRuns(ctx(t), "img"))
	if v, err := s.AssignRun(ctx(t), "run-1", "img", "v-after", T0); err != nil || v != "v-after" {
		t.Errorf("AssignRun after ForgetRuns = %q, %v; want the new version", v, err)
	}
	if v, err := s.AssignRun(ctx(t), "run-1", "other", "v-x", T0); err != nil || v != "v-other" {
		t.Errorf("ForgetRuns of img forgot another label's run: got %q, %v", v, err)
	}
}

// testAssignRunRetention: assignments older than rollout.RunRetention are
// forgotten once rollout.PruneRunsEvery more runs were assigned, so a
// re-run after that gets the current version; younger ones are kept.
func testAssignRunRetention(t *testing.T, s rollout.Store) {
	later := T0.Add(rollout.RunRetention + time.Hour)
	if v, err := s.AssignRun(ctx(t), "run-old", "img", "v-old", T0); err != nil || v != "v-old" {
		t.Fatalf("AssignRun = %q, %v; want v-old", v, err)
	}
	if v, err := s.AssignRun(ctx(t), "run-young", "img", "v-old", later.Add(-time.Hour)); err != nil || v != "v-old" {
		t.Fatalf("AssignRun = %q, %v; want v-old", v, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Go(func() {
			for i := w; i < 2*rollout.PruneRunsEvery; i += len(errs) {
				if _, err := s.AssignRun(context.Background(), fmt.Sprint("run-", i), "img", "v1", later); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	for _, tc := range []struct{ run, want string }{
		{"run-old", "v-new"},   // older than RunRetention: forgotten
		{"run-young", "v-old"}, // younger: kept
		{"run-5", "v1"},
	} {
		if v, err := s.AssignRun(ctx(t), tc.run, "img", "v-new", later); err != nil || v != tc.want {
			t.Errorf("AssignRun(%s) after %d more runs = %q, %v; want %q", tc.run, 2*rollout.PruneRunsEvery, v, err, tc.want)
		}
	}
}

func testServed(t *testing.T, s rollout.Store) {
	m0 := T0
	m1 := T0.Add(time.Minute)
	must(t, s.AddServed(ctx(t), []rollout.Served{
		{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m0.Add(10 * time.Second), Count: 3},
		{Label: "img", Version: "v0", Ring: 1, Reason: "default", Minute: m0, Count: 10},
		{Label: "other", Version: "v1", Ring: 0, Reason: "rollout", Minute: m0, Count: 99},
	}))
	must(t, s.AddServed(ctx(t), []rollout.Served{
		{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m0, Count: 2},
		{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m1.Add(59 * time.Second), Count: 4},
		{Label: "img", Version: "v0", Ring: 1, Reason: "pin", Minute: m1, Count: 1},
	}))
	must(t, s.AddServed(ctx(t), nil))
	for _, tc := range []struct {
		since time.Time
		want  []rollout.Served
	}{
		{m0.Add(30 * time.Second), []rollout.Served{ // the bucket holding since counts
			{Label: "img", Version: "v0", Ring: 1, Reason: "default", Minute: m0, Count: 10},
			{Label: "img", Version: "v0", Ring: 1, Reason: "pin", Minute: m1, Count: 1},
			{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m1, Count: 9},
		}},
		{m1, []rollout.Served{
			{Label: "img", Version: "v0", Ring: 1, Reason: "pin", Minute: m1, Count: 1},
			{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m1, Count: 4},
		}},
		{m1.Add(time.Minute), nil},
	} {
		got, err := s.ServedSince(ctx(t), "img", tc.since)
		must(t, err)
		if d := cmp.Diff(tc.want, got, equateEmpty); d != "" {
			t.Errorf("ServedSince(%v) (-want +got):\n%s", tc.since, d)
		}
	}
}
