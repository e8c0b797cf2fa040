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
	"github.com/imagegate/imagegate/internal/store/batch"
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

// RunAssignRuns tests a store's batch.Writer for run assignments (w,
// writing into s) with groups as big as batch.Runs makes them: more runs
// than one statement may take, a run repeated within the group, runs
// stored by an earlier group, the same run under other labels.
func RunAssignRuns(t *testing.T, open func(t *testing.T) (rollout.Store, batch.Writer)) {
	s, w := open(t)
	write := func(b *batch.Batch) {
		t.Helper()
		if err := w.AssignRuns(ctx(t), b); err != nil {
			t.Fatalf("AssignRuns of %d: %v", len(b.Assignments), err)
		}
	}
	// An earlier group: 70 runs of img, one of them under other too.
	var old batch.Batch
	for i := range 70 {
		old.Assignments = append(old.Assignments, batch.Assignment{RunID: fmt.Sprint("old-", i), Label: "img", Version: "v-old", At: T0})
	}
	old.Assignments = append(old.Assignments, batch.Assignment{RunID: "old-5", Label: "other", Version: "v-other", At: T0})
	write(&old)
	for _, a := range old.Assignments {
		if a.Got != a.Version {
			t.Fatalf("first AssignRuns: %s of %s got %q, want %q", a.RunID, a.Label, a.Got, a.Version)
		}
	}

	// One group of 300: new runs, new runs repeated (the first of them
	// wins), the earlier runs again (theirs win) and under a new label,
	// mixed so that every statement of the group meets some of each.
	at := T0.Add(time.Minute)
	var b batch.Batch
	var want []string
	add := func(run, label, version, w string) {
		b.Assignments = append(b.Assignments, batch.Assignment{RunID: run, Label: label, Version: version, At: at})
		want = append(want, w)
	}
	for i := range 150 {
		add(fmt.Sprint("new-", i), "img", fmt.Sprint("v-new-", i), fmt.Sprint("v-new-", i))
		switch {
		case i%3 == 0 && i >= 10:
			add(fmt.Sprint("new-", i-10), "img", "v-dup", fmt.Sprint("v-new-", i-10))
		case i%3 == 1 && i < 70:
			add(fmt.Sprint("old-", i), "img", "v-late", "v-old")
		case i%3 == 2 && i < 70:
			add(fmt.Sprint("old-", i), "third", "v-third", "v-third")
		}
	}
	add("old-5", "other", "v-late", "v-other")
	add("old-5", "img", "v-late", "v-old")
	add("new-7", "img", "v-dup", "v-new-7")
	add("new-7", "other", "v-new-7-other", "v-new-7-other")
	add("new-7", "other", "v-dup", "v-new-7-other")
	write(&b)
	for i, a := range b.Assignments {
		if a.Got != want[i] {
			t.Errorf("assignment %d, %s of %s offered %q: got %q, want %q", i, a.RunID, a.Label, a.Version, a.Got, want[i])
		}
	}

	// What was stored is what the group was told.
	for _, tc := range []struct{ run, label, want string }{
		{"new-0", "img", "v-new-0"},
		{"new-149", "img", "v-new-149"},
		{"new-7", "other", "v-new-7-other"},
		{"old-69", "img", "v-old"},
		{"old-5", "other", "v-other"},
		{"old-2", "third", "v-third"},
	} {
		if v, err := s.AssignRun(ctx(t), tc.run, tc.label, "v-check", at); err != nil || v != tc.want {
			t.Errorf("AssignRun(%s, %s) after the group = %q, %v; want %q", tc.run, tc.label, v, err, tc.want)
		}
	}

	// A group that prunes drops the earlier group's runs, not its own.
	p := batch.Batch{PruneBefore: T0.Add(time.Second)}
	p.Assignments = []batch.Assignment{
		{RunID: "old-1", Label: "img", Version: "v-pruned", At: at}, // still stored when the group inserts
		{RunID: "late", Label: "img", Version: "v-late", At: at},
	}
	write(&p)
	if got := []string{p.Assignments[0].Got, p.Assignments[1].Got}; got[0] != "v-old" || got[1] != "v-late" {
		t.Errorf("pruning group got %q, want [v-old v-late]", got)
	}
	for _, tc := range []struct{ run, want string }{{"old-2", "v-after"}, {"new-3", "v-new-3"}, {"late", "v-late"}} {
		if v, err := s.AssignRun(ctx(t), tc.run, "img", "v-after", at); err != nil || v != tc.want {
			t.Errorf("AssignRun(%s) after the prune = %q, %v; want %q", tc.run, v, err, tc.want)
		}
	}
}

// testAssignRunCrowd: many concurrent callers, so that groups hold many
// runs, some repeated, some stored before: callers of one run all get
// one answer, the first stored.
func testAssignRunCrowd(t *testing.T, s rollout.Store) {
	for i := range 30 {
		if v, err := s.AssignRun(ctx(t), fmt.Sprint("run-", i), "img", "v-before", T0); err != nil || v != "v-before" {
			t.Fatalf("AssignRun(run-%d) = %q, %v; want v-before", i, v, err)
		}
	}
	const callers, runs = 400, 100
	got := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			got[i], errs[i] = s.AssignRun(context.Background(), fmt.Sprint("run-", i%runs), "img", fmt.Sprint("v", i), T0)
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	for i := range callers {
		r := i % runs
		switch {
		case r < 30 && got[i] != "v-before":
			t.Errorf("caller %d of run-%d, stored before, got %q; want v-before", i, r, got[i])
		case got[i] != got[r]:
			t.Errorf("callers of run-%d got %q and %q: first write must win for everyone", r, got[r], got[i])
		}
	}
	for r := range runs {
		if v, err := s.AssignRun(ctx(t), fmt.Sprint("run-", r), "img", "v-late", T0); err != nil || v != got[r] {
			t.Errorf("AssignRun(run-%d) afterwards = %q, %v; want %q", r, v, err, got[r])
		}
	}
}
