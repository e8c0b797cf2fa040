package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

func testLease(t *testing.T, s rollout.Store) {
	const ttl = 10 * time.Second
	type step struct {
		holder    string
		at        time.Duration // after T0
		release   bool
		wantOK    bool
		wantFence int64
	}
	steps := []step{
		{holder: "a", at: 0, wantOK: true, wantFence: 1},
		{holder: "b", at: time.Second, wantOK: false, wantFence: 1},
		{holder: "a", at: 5 * time.Second, wantOK: true, wantFence: 1},   // renew: same fence
		{holder: "b", at: 14 * time.Second, wantOK: false, wantFence: 1}, // renewed until 15s
		{holder: "b", at: 15 * time.Second, wantOK: true, wantFence: 2},  // expired: changes hands
		{holder: "a", at: 16 * time.Second, wantOK: false, wantFence: 2}, // the old leader is out
		{holder: "a", at: 17 * time.Second, release: true},               // not a's to release
		{holder: "a", at: 18 * time.Second, wantOK: false, wantFence: 2}, // still b's
		{holder: "b", at: 19 * time.Second, release: true},               // b steps down
		{holder: "a", at: 19 * time.Second, wantOK: true, wantFence: 3},  // free at once
		{holder: "a", at: 100 * time.Second, wantOK: true, wantFence: 3}, // expired, nobody took it
		{holder: "c", at: 1000 * time.Second, wantOK: true, wantFence: 4},
	}
	for i, st := range steps {
		if st.release {
			must(t, s.ReleaseLease(ctx(t), "controller", st.holder))
			continue
		}
		ok, fence, err := s.AcquireLease(ctx(t), "controller", st.holder, ttl, T0.Add(st.at))
		must(t, err)
		if ok != st.wantOK || fence != st.wantFence {
			t.Errorf("step %d: %s at +%v: ok=%v fence=%d, want ok=%v fence=%d", i, st.holder, st.at, ok, fence, st.wantOK, st.wantFence)
		}
	}
	ok, fence, err := s.AcquireLease(ctx(t), "other", "a", ttl, T0)
	must(t, err)
	if !ok || fence != 1 {
		t.Errorf("an independent lease name: ok=%v fence=%d, want true 1", ok, fence)
	}
	must(t, s.ReleaseLease(ctx(t), "never-taken", "a"))
}

// testLeaseConcurrent: twenty candidates race for one lease, twice (a free
// lease, then an expired one): exactly one wins each time and the fence
// moves by one.
func testLeaseConcurrent(t *testing.T, s rollout.Store) {
	const n = 20
	race := func(at time.Time) (winners []string, fences []int64) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var errs []error
		for i := range n {
			wg.Go(func() {
				holder := fmt.Sprint("round", at.Unix(), "-", i)
				ok, fence, err := s.AcquireLease(context.Background(), "controller", holder, 10*time.Second, at)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if ok {
					winners = append(winners, holder)
				}
				fences = append(fences, fence)
			})
		}
		wg.Wait()
		must(t, errors.Join(errs...))
		return winners, fences
	}
	for round, at := range []time.Time{T0, T0.Add(time.Minute)} {
		winners, fences := race(at)
		if len(winners) != 1 {
			t.Fatalf("round %d: %d holders got the lease (%v), want exactly 1", round, len(winners), winners)
		}
		sort.Slice(fences, func(i, j int) bool { return fences[i] < fences[j] })
		if fences[0] != fences[len(fences)-1] || fences[0] != int64(round+1) {
			t.Errorf("round %d: fences seen %v, want all %d", round, fences, round+1)
		}
		ok, _, err := s.AcquireLease(ctx(t), "controller", winners[0], 10*time.Second, at.Add(time.Second))
		must(t, err)
		if !ok {
			t.Errorf("round %d: winner %s cannot renew", round, winners[0])
		}
	}
}
