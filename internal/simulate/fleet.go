package simulate

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// org is one customer organisation.
type org struct {
	name string
	// weight is its share of the fleet's jobs (Pareto); mult multiplies its
	// pipelines' background failure rate (lognormal, mean 1).
	weight, mult float64
	ring0        bool
	// pinned per label: the org pinned the old version (or is about to).
	pinned [2]bool
}

// pipeline is one workflow definition of an org.
type pipeline struct {
	org int32
	// id is the stable pipeline id the runner reports
	// (org/repo/.github/workflows/ci.yml); repo appears in error texts.
	id, repo string
	label    int8
	weight   float64
	// mult multiplies its background failure rate (lognormal, mean 1): a
	// few pipelines are very flaky.
	mult float64
	// nightly pipelines run once a night, at nightlyMinute past midnight
	// UTC.
	nightly       bool
	nightlyMinute int
	py            int  // Python minor it uses, e.g. 37
	uses          bool // it uses the feature the broken version breaks
	jobsPerRun    int
	deployStage   bool // one more job once the first finished
	// Customer behaviour: stopped pipelines no longer run; streak counts
	// failures in a row on the new version; reacted once the owner acted.
	stopped bool
	streak  int
	reacted bool
}

// fleet is the simulated customer base, built from the seed alone.
type fleet struct {
	orgs  []org
	pipes []pipeline
	// day draws a daytime pipeline by weight; nightly lists the nightly
	// ones by minute of the night.
	day     alias
	nightly [][]int32 // minute of the day -> pipelines
	// sigs are the shared background signatures, sigCDF their cumulative
	// Zipf shares.
	sigs   []signature
	sigCDF []float64
	// meanJobsPerRun turns job rates into run rates.
	meanJobsPerRun float64
}

// labels of the simulated images; two-labels rolls both out at once.
var labelNames = []string{"ubuntu-22.04", "ubuntu-24.04"}

func newFleet(p Params, r *rand.Rand) *fleet {
	f := &fleet{orgs: make([]org, p.Orgs)}
	// Pareto sizes: U^(-1/α) has a tail heavy enough that a few orgs run
	// most jobs and most orgs run few.
	for i := range f.orgs {
		f.orgs[i] = org{name: fmt.Sprintf("org-%05d", i), weight: math.Pow(1-r.Float64(), -1/p.OrgSizeAlpha),
			mult: math.Exp(0.5*r.NormFloat64() - 0.125)}
	}
	// Ring 0 is named orgs among the busiest Ring0Pool of them: the
	// platform's own and its friendliest heavy users, flakier than the
	// fleet.
	byWeight := make([]int, len(f.orgs))
	for i := range byWeight {
		byWeight[i] = i
	}
	slices.SortFunc(byWeight, func(a, b int) int { return cmp.Compare(f.orgs[b].weight, f.orgs[a].weight) })
	top := byWeight[:max(p.Ring0Orgs, int(p.Ring0Pool*float64(len(f.orgs))))]
	r.Shuffle(len(top), func(i, j int) { top[i], top[j] = top[j], top[i] })
	for _, o := range top[:p.Ring0Orgs] {
		f.orgs[o].ring0 = true
		f.orgs[o].mult *= p.Ring0Flakiness
	}
	meanW := 0.0
	for _, o := range f.orgs {
		meanW += o.weight
	}
	meanW /= float64(len(f.orgs))

	var dayW []float64
	var dayIdx []int32
	f.nightly = make([][]int32, 24*60)
	jobs, runs := 0.0, 0.0
	for oi, o := range f.orgs {
		n := min(1+int(6*math.Sqrt(o.weight/meanW)), 1000)
		// Zipf shares within the org: one main pipeline, a tail of others.
		sum := 0.0
		for k := range n {
			sum += 1 / float64(k+1)
		}
		for k := range n {
			repo := fmt.Sprintf("%s/repo-%d", o.name, k/2)
			pl := pipeline{org: int32(oi), repo: repo, id: fmt.Sprintf("%s/.github/workflows/%s.yml", repo, []string{"ci", "test"}[k%2]),
				weight: o.weight / float64(k+1) / sum, mult: math.Exp(0.9*r.NormFloat64() - 0.405),
				py: pythons[r.IntN(len(pythons))], uses: r.Float64() < p.Affected,
				jobsPerRun: 1 + int(r.ExpFloat64()*1.2), deployStage: r.Float64() < 0.3}
			pl.jobsPerRun = min(pl.jobsPerRun, 8)
			if p.Scenario == ScenarioTwoLabels {
				pl.label = int8(r.IntN(2))
			}
			if r.Float64() < p.NightlyShare {
				pl.nightly, pl.nightlyMinute = true, 60+r.IntN(180)
			}
			idx := int32(len(f.pipes))
			f.pipes = append(f.pipes, pl)
			if pl.nightly {
				f.nightly[pl.nightlyMinute] = append(f.nightly[pl.nightlyMinute], idx)
				continue
			}
			dayW = append(dayW, pl.weight)
			dayIdx = append(dayIdx, idx)
			jobs += pl.weight * (float64(pl.jobsPerRun) + b2f(pl.deployStage))
			runs += pl.weight
		}
	}
	f.day = newAlias(dayW, dayIdx)
	f.meanJobsPerRun = jobs / runs

	f.sigs = make([]signature, p.Signatures)
	sum := 0.0
	for i := range f.sigs {
		f.sigs[i] = signatureFamilies[r.IntN(len(signatureFamilies))](r)
		sum += math.Pow(float64(i+1), -p.SignatureZipf)
		f.sigCDF = append(f.sigCDF, sum)
	}
	for i := range f.sigCDF {
		f.sigCDF[i] /= sum
	}
	return f
}

// sigShare is the probability that a shared background failure has
// signature i.
func (f *fleet) sigShare(i int) float64 {
	if i == 0 {
		return f.sigCDF[0]
	}
	return f.sigCDF[i] - f.sigCDF[i-1]
}

func (f *fleet) drawSig(r *rand.Rand) int {
	i, _ := slices.BinarySearch(f.sigCDF, r.Float64())
	return min(i, len(f.sigCDF)-1)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// cycle is the job arrival rate at t relative to the weekly mean: a daily
// wave peaking at 15:00 UTC (Europe's afternoon, America's morning) and
// quiet weekends. Its mean over a week is 1.
func cycle(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	daily := 1 + 0.5*math.Cos(2*math.Pi*(h-15)/24)
	weekly := 1.2
	if d := t.Weekday(); d == time.Saturday || d == time.Sunday {
		weekly = 0.5
	}
	return daily * weekly
}

// hourMult makes failures commoner when the platform is busy (networks,
// registries and shared services strain at the peak).
func hourMult(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	return 1 + 0.25*math.Cos(2*math.Pi*(h-15)/24)
}

// poisson draws a Poisson count (normal approximation above 30).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	l, k, prod := math.Exp(-lambda), 0, r.Float64()
	for prod > l {
		k++
		prod *= r.Float64()
	}
	return k
}

// alias draws an index in O(1) by weight (Vose's alias method).
type alias struct {
	prob  []float64
	alias []int32
	idx   []int32
}

func newAlias(w []float64, idx []int32) alias {
	n := len(w)
	a := alias{prob: make([]float64, n), alias: make([]int32, n), idx: idx}
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	scaled := make([]float64, n)
	var small, large []int32
	for i, v := range w {
		scaled[i] = v * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		a.prob[s], a.alias[s] = scaled[s], l
		scaled[l] += scaled[s] - 1
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range large {
		a.prob[i] = 1
	}
	for _, i := range small {
		a.prob[i] = 1
	}
	return a
}

func (a *alias) draw(r *rand.Rand) int32 {
	i := r.IntN(len(a.prob))
	if r.Float64() < a.prob[i] {
		return a.idx[i]
	}
	return a.idx[a.alias[i]]
}
