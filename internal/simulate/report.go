package simulate

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Options say how many seeds to run, on which stores, how many at once.
type Options struct {
	Seeds     int
	SeedStart uint64
	// Parallel seeds at once; default the number of CPUs.
	Parallel int
	Open     Opener
	// Progress, when set, is called after each seed (from its goroutine,
	// one call at a time).
	Progress func(SeedResult)
}

// Report is the `-o json` output; SCHEMA.md documents it.
type Report struct {
	Scenario  string `json:"scenario"`
	Seeds     int    `json:"seeds"`
	SeedStart uint64 `json:"seedStart"`
	Params    Params `json:"params"`
	// Health is the gate imagegate's controller decided with.
	Health    string            `json:"health"`
	Detectors []DetectorSummary `json:"detectors"`
	// Jobs simulated over all seeds.
	Jobs           int64   `json:"jobs"`
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	// Timing says where the seeds' wall time went; like ElapsedSeconds it
	// depends on the machine, not on the seeds.
	Timing Timing `json:"timing"`
	// Runs are the seeds' results, in seed order: which seeds and rollouts
	// a summary figure comes from, and imagegate's reasons.
	Runs []SeedResult `json:"runs"`
}

// Timing sums the seeds' wall time (SeedSeconds) and the parts of it spent
// in the Service's IngestEvents (validation, signatures and the store's
// writes: IngestSeconds) and in the controller's ticks (the store's
// telemetry reads and the analysis: TickSeconds); the rest is the
// simulator's own (the fleet, resolves, the peers).
type Timing struct {
	SeedSeconds   float64 `json:"seedSeconds"`
	IngestSeconds float64 `json:"ingestSeconds"`
	TickSeconds   float64 `json:"tickSeconds"`
}

// DetectorSummary is one detector over all seeds.
type DetectorSummary struct {
	Name          string `json:"name"`
	Runs          int    `json:"runs"`
	Halted        int    `json:"halted"`
	HaltedInRing0 int    `json:"haltedInRing0"`
	FalseHalts    int    `json:"falseHalts"`
	// Censored counts runs with a worse version in which the detector had
	// not halted it when it stopped being observable.
	Censored               int    `json:"censored"`
	DetectMinutes          Stat   `json:"detectMinutes"`
	FailedJobsBeforeHalt   Stat   `json:"failedJobsBeforeHalt"`
	AffectedOrgsBeforeHalt Median `json:"affectedOrgsBeforeHalt"`
}

// Stat is a median and 90th percentile; null when there was nothing to
// measure.
type Stat struct {
	Median *float64 `json:"median"`
	P90    *float64 `json:"p90"`
}

// Median is a median alone; null when there was nothing to measure.
type Median struct {
	Median *float64 `json:"median"`
}

// Run simulates opts.Seeds seeds from opts.SeedStart, opts.Parallel at a
// time, and summarises them. The summary depends only on p and the seeds,
// not on which seed finished first.
func Run(ctx context.Context, p Params, opts Options) (Report, []SeedResult, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return Report{}, nil, err
	}
	if opts.Seeds < 1 {
		return Report{}, nil, fmt.Errorf("seeds %d: run at least one", opts.Seeds)
	}
	if opts.Open == nil {
		opts.Open = SQLiteOpener("")
	}
	par := cmp.Or(opts.Parallel, runtime.NumCPU())
	start := time.Now()
	results := make([]SeedResult, opts.Seeds)
	errs := make([]error, opts.Seeds)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var progress sync.Mutex
	for range min(par, opts.Seeds) {
		wg.Go(func() {
			for i := range next {
				results[i], errs[i] = RunSeed(ctx, p, opts.SeedStart+uint64(i), opts.Open)
				if errs[i] != nil {
					cancel()
					continue
				}
				if opts.Progress != nil {
					progress.Lock()
					opts.Progress(results[i])
					progress.Unlock()
				}
			}
		})
	}
	for i := range opts.Seeds {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Report{}, nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return Report{}, nil, err
	}
	rep := Summarize(p, opts.SeedStart, results)
	rep.ElapsedSeconds = math.Round(time.Since(start).Seconds()*10) / 10
	var seed, ingest, tick time.Duration
	for _, r := range results {
		seed, ingest, tick = seed+r.Elapsed, ingest+r.Ingest, tick+r.Tick
	}
	round := func(d time.Duration) float64 { return math.Round(d.Seconds()*10) / 10 }
	rep.Timing = Timing{SeedSeconds: round(seed), IngestSeconds: round(ingest), TickSeconds: round(tick)}
	return rep, results, nil
}

// Summarize computes the report's detector figures from seed results:
//   - falseHalts counts halted rollouts whose new version is not worse;
//   - halted and haltedInRing0 count runs in which the detector halted the
//     worse rollout (in Ring 0), or, in scenarios without one, any rollout;
//   - detectMinutes, failedJobsBeforeHalt and affectedOrgsBeforeHalt cover
//     the halts of worse rollouts.
func Summarize(p Params, seedStart uint64, results []SeedResult) Report {
	rep := Report{Scenario: p.Scenario, Seeds: len(results), SeedStart: seedStart, Params: p, Health: p.healthName(), Runs: results}
	anyWorse := p.worse(0) || p.worse(1)
	for di, name := range detectorNames {
		d := DetectorSummary{Name: name, Runs: len(results)}
		var mins, failed, orgs []float64
		for _, res := range results {
			halted, ring0, censored := false, false, false
			for _, rr := range res.Rollouts {
				o := rr.Detectors[di]
				if o.Halted && !rr.Worse {
					d.FalseHalts++
				}
				if rr.Worse != anyWorse {
					continue
				}
				halted = halted || o.Halted
				ring0 = ring0 || (o.Halted && o.Ring == 0)
				if rr.Worse && o.Censored {
					censored = true
				}
				if rr.Worse && o.Halted {
					mins = append(mins, o.Minutes)
					failed = append(failed, float64(o.FailedJobs))
					orgs = append(orgs, float64(o.AffectedOrgs))
				}
			}
			d.Halted += b2i(halted)
			d.HaltedInRing0 += b2i(ring0)
			d.Censored += b2i(censored)
		}
		d.DetectMinutes = Stat{quantile(mins, 0.5), quantile(mins, 0.9)}
		d.FailedJobsBeforeHalt = Stat{quantile(failed, 0.5), quantile(failed, 0.9)}
		d.AffectedOrgsBeforeHalt = Median{quantile(orgs, 0.5)}
		rep.Detectors = append(rep.Detectors, d)
	}
	for _, res := range results {
		rep.Jobs += res.Jobs
	}
	return rep
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// quantile interpolates linearly between the closest ranks (the usual
// "type 7" definition); nil for no values. Rounded to a tenth.
func quantile(v []float64, q float64) *float64 {
	if len(v) == 0 {
		return nil
	}
	s := slices.Sorted(slices.Values(v))
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	x := s[lo]
	if lo+1 < len(s) {
		x += (h - float64(lo)) * (s[lo+1] - s[lo])
	}
	x = math.Round(x*10) / 10
	return &x
}

// MarshalJSON writes durations as Go duration strings ("4h0m0s"), which
// the flags accept too.
func (p Params) MarshalJSON() ([]byte, error) {
	v := reflect.ValueOf(p)
	t := v.Type()
	var b strings.Builder
	b.WriteByte('{')
	for i := range t.NumField() {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		var val any = v.Field(i).Interface()
		switch x := val.(type) {
		case time.Duration:
			val = x.String()
		case []time.Duration:
			s := make([]string, len(x))
			for k, d := range x {
				s[k] = d.String()
			}
			val = s
		}
		enc, err := json.Marshal(val)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%q:%s", name, enc)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// WriteJSON writes the report as SCHEMA.md describes it.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people: the summary, then the
// rollouts that miss a bar for imagegate (see notable).
func (r Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "scenario %s: %d seeds from %d, %d jobs, %.1fs (imagegate's gate: %s)\n", r.Scenario, r.Seeds, r.SeedStart, r.Jobs, r.ElapsedSeconds, r.Health)
	fmt.Fprintf(w, "seeds' wall time %.1fs: ingest %.1fs, controller ticks %.1fs, simulator %.1fs\n\n", r.Timing.SeedSeconds, r.Timing.IngestSeconds,
		r.Timing.TickSeconds, r.Timing.SeedSeconds-r.Timing.IngestSeconds-r.Timing.TickSeconds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DETECTOR\tRUNS\tHALTED\tIN RING 0\tFALSE HALTS\tCENSORED\tDETECT MIN (MEDIAN/P90)\tFAILED JOBS (MEDIAN/P90)\tORGS (MEDIAN)")
	for _, d := range r.Detectors {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s / %s\t%s / %s\t%s\n", d.Name, d.Runs, d.Halted, d.HaltedInRing0, d.FalseHalts, d.Censored,
			num(d.DetectMinutes.Median), num(d.DetectMinutes.P90), num(d.FailedJobsBeforeHalt.Median), num(d.FailedJobsBeforeHalt.P90), num(d.AffectedOrgsBeforeHalt.Median))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nimagegate's misses (worse rollouts not halted in Ring 0) and false halts:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	n := 0
	for _, res := range r.Runs {
		for _, rr := range res.Rollouts {
			what, ok := notable(rr)
			if !ok {
				continue
			}
			if n == 0 {
				fmt.Fprintln(tw, "SEED\tLABEL\tWHAT\tSTATE\tRING\tMIN\tREASON")
			}
			n++
			ig := rr.Detectors[0]
			ring, mins, why := rr.Ring, "-", rr.LastVerdict
			if ig.Halted {
				ring, mins, why = ig.Ring, fmt.Sprintf("%g", math.Round(ig.Minutes*10)/10), rr.Reason
			} else if why != "" {
				why = "last verdict: " + why
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", res.Seed, rr.Label, what, rr.State, ring, mins, cmp.Or(truncate(why, maxTableReason), "-"))
		}
	}
	if n == 0 {
		fmt.Fprintln(tw, "none")
	}
	return tw.Flush()
}

// notable says whether a rollout misses a bar for imagegate, and how: a
// worse version it did not halt, or halted only after Ring 0, or a
// version that is not worse which it halted. The first detector is
// imagegate (detectorNames).
func notable(rr RolloutRun) (string, bool) {
	if len(rr.Detectors) == 0 {
		return "", false
	}
	ig := rr.Detectors[0]
	switch {
	case rr.Worse && !ig.Halted:
		return "not halted", true
	case rr.Worse && ig.Ring > 0:
		return "halted late", true
	case !rr.Worse && ig.Halted:
		return "false halt", true
	}
	return "", false
}

// maxTableReason bounds a reason in the table, in characters; -o json has
// it whole.
const maxTableReason = 160

// truncate puts s on one line and cuts it to at most n characters, an
// ellipsis marking the cut.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func num(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%g", *v)
}
