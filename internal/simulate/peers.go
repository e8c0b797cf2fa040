package simulate

import (
	"math"
	"slices"
	"time"
)

// The peers are the gates other progressive-delivery tools put on a
// canary, run as observers on the very stream imagegate's controller acts
// on: each sees, once a simulated minute, the job reports that arrived in
// that minute, and records when it would have halted. They read the same
// two sides imagegate's failure-rate gate reads: the new version's jobs in
// the rollout's current ring, and the old version's jobs everywhere over
// the same window (the concurrent baseline: control share, pinned orgs and
// rings not reached yet).

// minute is what one simulated minute's reports add to a ring's sides.
type minute struct {
	NewJobs, NewFailed, OldJobs, OldFailed int64
}

// peer is a gate under comparison. observe is called once a minute while
// the rollout bakes, with how long it has been in its ring (at least one
// minute; a new ring restarts at one) and the minute's counts; it reports
// whether the gate fails the rollout now.
type peer interface {
	name() string
	observe(inRing time.Duration, ringChanged bool, m minute) bool
}

// thresholdGate is Flagger's and Argo Rollouts' analysis: a metric query
// (the failure rate) over fixed windows, each measurement failing when the
// new version's rate exceeds the old one's by more than diff; after limit
// failing measurements in a row the rollout is aborted. Measurements start
// once minJobs jobs of the new version were seen in the ring; a window
// without new jobs measures nothing.
type thresholdGate struct {
	window  time.Duration
	diff    float64
	minJobs int64
	limit   int

	seen     int64 // new jobs in the ring so far
	cur      minute
	failures int
}

var _ peer = (*thresholdGate)(nil)

func (g *thresholdGate) name() string { return "threshold" }

func (g *thresholdGate) observe(inRing time.Duration, ringChanged bool, m minute) bool {
	if ringChanged {
		g.seen, g.cur, g.failures = 0, minute{}, 0
	}
	g.seen += m.NewJobs
	g.cur.NewJobs += m.NewJobs
	g.cur.NewFailed += m.NewFailed
	g.cur.OldJobs += m.OldJobs
	g.cur.OldFailed += m.OldFailed
	if inRing%g.window != 0 {
		return false
	}
	w := g.cur
	g.cur = minute{}
	if g.seen < g.minJobs || w.NewJobs == 0 {
		return false
	}
	oldRate := 0.0
	if w.OldJobs > 0 {
		oldRate = float64(w.OldFailed) / float64(w.OldJobs)
	}
	if float64(w.NewFailed)/float64(w.NewJobs)-oldRate > g.diff {
		g.failures++
	} else {
		g.failures = 0
	}
	return g.failures >= g.limit
}

// mannWhitneyGate is Kayenta's judge (NetflixACAJudge with its
// MannWhitneyClassifier) on one critical metric, the failure rate: every
// `every`, the per-bucket failure rates of the new version and of the old
// one since the ring started are compared by a two-sided Mann-Whitney U
// test at confidence conf. Buckets without jobs are NaN and removed
// (Kayenta's default NaN strategy). The metric is High, and the canary
// fails, when the confidence interval of the Hodges-Lehmann shift lies
// above tolerance × |estimate| (Kayenta's tolerance bound) and the effect
// size, the ratio of the means new/old (1 when the old mean is 0), is at
// least allowedIncrease.
type mannWhitneyGate struct {
	every, bucket         time.Duration
	conf, tol, allowedInc float64

	buckets []minute
}

var _ peer = (*mannWhitneyGate)(nil)

func (g *mannWhitneyGate) name() string { return "mann-whitney" }

func (g *mannWhitneyGate) observe(inRing time.Duration, ringChanged bool, m minute) bool {
	if ringChanged {
		g.buckets = g.buckets[:0]
	}
	i := int((inRing - time.Minute) / g.bucket)
	for len(g.buckets) <= i {
		g.buckets = append(g.buckets, minute{})
	}
	b := &g.buckets[i]
	b.NewJobs += m.NewJobs
	b.NewFailed += m.NewFailed
	b.OldJobs += m.OldJobs
	b.OldFailed += m.OldFailed
	if inRing%g.every != 0 {
		return false
	}
	var x, y []float64
	for _, b := range g.buckets {
		if b.NewJobs > 0 {
			x = append(x, float64(b.NewFailed)/float64(b.NewJobs))
		}
		if b.OldJobs > 0 {
			y = append(y, float64(b.OldFailed)/float64(b.OldJobs))
		}
	}
	return kayentaHigh(x, y, g.conf, g.tol, g.allowedInc)
}

// kayentaHigh classifies experiment x against control y as Kayenta's
// Mann-Whitney classifier does for a metric whose increase is bad.
func kayentaHigh(x, y []float64, conf, tol, allowedInc float64) bool {
	if len(x) == 0 || len(y) == 0 {
		return false // no data: Kayenta's Nodata, which does not fail
	}
	xs, ys := slices.Sorted(slices.Values(x)), slices.Sorted(slices.Values(y))
	if slices.Equal(xs, ys) {
		return false
	}
	lo, _, est := hodgesLehmann(xs, ys, conf)
	if !(lo > tol*math.Abs(est)) {
		return false
	}
	my, mx := mean(y), mean(x)
	effect := 1.0
	if my != 0 {
		effect = mx / my
	}
	return effect >= allowedInc
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// hodgesLehmann returns the confidence interval at level conf and the
// point estimate of the shift between x and y: the median of the pairwise
// differences x_i − y_j, and the order statistics d(k+1) and d(mn−k) of
// them with k = ⌊mn/2 − z·√(mn(m+n+1)/12)⌋, z the normal quantile at
// (1+conf)/2 — the large-sample form of the interval R's wilcox.test
// (which Kayenta called) reports, without its tie correction.
func hodgesLehmann(x, y []float64, conf float64) (lo, hi, est float64) {
	m, n := len(x), len(y)
	d := make([]float64, 0, m*n)
	for _, a := range x {
		for _, b := range y {
			d = append(d, a-b)
		}
	}
	slices.Sort(d)
	N := len(d)
	if N%2 == 1 {
		est = d[N/2]
	} else {
		est = (d[N/2-1] + d[N/2]) / 2
	}
	z := math.Sqrt2 * math.Erfinv(conf)
	k := int(math.Floor(float64(N)/2 - z*math.Sqrt(float64(m*n*(m+n+1))/12)))
	if k < 0 {
		// Too few observations for an interval at this confidence: it
		// spans everything, so it never lies above the bound.
		return math.Inf(-1), math.Inf(1), est
	}
	return d[k], d[N-1-k], est
}
