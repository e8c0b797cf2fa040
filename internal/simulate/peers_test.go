package simulate_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/simulate"
)

// TestHodgesLehmann checks the estimate and interval against values worked
// by hand: x = {1,2,3}, y = {0,1} give the differences 0 1 1 2 2 3, median
// 1.5; at 50 % confidence z = 0.674, k = ⌊3 − 0.674·√3⌋ = 1, so the
// interval is [d(2), d(5)] = [1, 2]; at 98 % k < 0 and there is none.
func TestHodgesLehmann(t *testing.T) {
	x, y := []float64{1, 2, 3}, []float64{0, 1}
	for _, tc := range []struct {
		conf         float64
		lo, hi, est  float64
		openInterval bool
	}{
		{conf: 0.5, lo: 1, hi: 2, est: 1.5},
		{conf: 0.98, est: 1.5, openInterval: true},
	} {
		lo, hi, est := simulate.HodgesLehmann(x, y, tc.conf)
		if tc.openInterval {
			if !math.IsInf(lo, -1) || !math.IsInf(hi, 1) || est != tc.est {
				t.Errorf("conf %v: got [%v, %v] est %v, want an unbounded interval and est %v", tc.conf, lo, hi, est, tc.est)
			}
			continue
		}
		if diff := cmp.Diff([3]float64{tc.lo, tc.hi, tc.est}, [3]float64{lo, hi, est}); diff != "" {
			t.Errorf("conf %v: (-want +got)\n%s", tc.conf, diff)
		}
	}
}

func noisy(r *rand.Rand, n int, mean, sd float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = max(0, mean+sd*r.NormFloat64())
	}
	return out
}

func TestKayentaHigh(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := noisy(r, 48, 0.08, 0.02)
	for _, tc := range []struct {
		name string
		x, y []float64
		want bool
	}{
		{"much higher", noisy(r, 48, 0.20, 0.03), base, true},
		{"same distribution", noisy(r, 48, 0.08, 0.02), base, false},
		{"lower", noisy(r, 48, 0.03, 0.01), base, false},
		{"identical samples", base, base, false},
		{"no experiment data", nil, base, false},
		{"too few samples for 98 %", []float64{0.5, 0.6}, []float64{0.1}, false},
	} {
		if got := simulate.KayentaHigh(tc.x, tc.y, 0.98, 0.25, 1); got != tc.want {
			t.Errorf("%s: high = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestThresholdGate(t *testing.T) {
	bad := simulate.Minute{NewJobs: 10, NewFailed: 3, OldJobs: 100, OldFailed: 8}  // +22 points
	good := simulate.Minute{NewJobs: 10, NewFailed: 1, OldJobs: 100, OldFailed: 8} // +2 points
	thin := simulate.Minute{NewJobs: 1, NewFailed: 1, OldJobs: 100, OldFailed: 8}  // bad, but few jobs
	empty := simulate.Minute{OldJobs: 100, OldFailed: 8}                           // no new jobs: measures nothing
	rep := func(m simulate.Minute, n int) []simulate.Minute {
		out := make([]simulate.Minute, n)
		for i := range out {
			out[i] = m
		}
		return out
	}
	cat := func(ms ...[]simulate.Minute) []simulate.Minute {
		var out []simulate.Minute
		for _, m := range ms {
			out = append(out, m...)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		minutes []simulate.Minute
		ringAt  int // minute index at which a new ring starts (-1: never)
		want    int // minute (1-based) of the halt, 0 for none
	}{
		{"three failing windows", rep(bad, 20), -1, 15},
		{"a passing window resets the count", cat(rep(bad, 10), rep(good, 5), rep(bad, 15)), -1, 30},
		{"healthy", rep(good, 60), -1, 0},
		{"not before 20 jobs in the ring", cat(rep(thin, 15), rep(bad, 15)), -1, 30},
		{"a window without new jobs neither fails nor resets", cat(rep(bad, 10), rep(empty, 5), rep(bad, 5)), -1, 20},
		{"a new ring starts over", rep(bad, 30), 12, 27},
	} {
		g := simulate.NewThresholdGate(5*time.Minute, 0.05, 20, 3)
		got, inRing := 0, 0
		for i, m := range tc.minutes {
			changed := i == 0 || i == tc.ringAt
			if changed {
				inRing = 0
			}
			inRing++
			if g.Observe(time.Duration(inRing)*time.Minute, changed, m) {
				got = i + 1
				break
			}
		}
		if got != tc.want {
			t.Errorf("%s: halted at minute %d, want %d", tc.name, got, tc.want)
		}
	}
}
