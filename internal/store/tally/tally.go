// Package tally groups a batch of new job observations into the
// aggregate rows they touch, the same way for every store: the stores
// then write each group with one upsert (SQLite) or one array statement
// (PostgreSQL) instead of one per event.
//
// Every slice of a Batch is sorted by its key, so concurrent writers of
// overlapping batches lock rows in the same order.
package tally

import (
	"cmp"
	"slices"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Member kinds: what a distinct-count set holds.
const (
	KindPipeline = "p"
	KindOrg      = "o"
)

// Ring names one cohort of one ring of a rollout.
type Ring struct {
	RolloutID string
	Stage     int
	Cohort    string
}

func (a Ring) compare(b Ring) int {
	return cmp.Or(cmp.Compare(a.RolloutID, b.RolloutID), cmp.Compare(a.Stage, b.Stage), cmp.Compare(a.Cohort, b.Cohort))
}

// Exposure adds Jobs and Failed to a ring cohort's exposure row.
type Exposure struct {
	Ring
	Jobs, Failed int64
}

// RingHour adds Jobs and Failed to a ring cohort's jobs in one UTC hour
// (Hour as HourOf counts it): the ring's health over time.
type RingHour struct {
	Ring
	Hour         int64
	Jobs, Failed int64
}

// RingMember is one pipeline or org of a ring cohort (Signature "") or of
// a signature in it. Org is the pipeline's org (kind pipeline only).
type RingMember struct {
	Ring
	Signature    string
	Kind, Member string
	Org          string
}

// RingOrg adds Failed to an org's failed jobs in a ring cohort.
type RingOrg struct {
	Ring
	Org    string
	Failed int64
}

// OrgDay adds Jobs and Failed to an org's jobs on a version on one UTC
// day (Day: days since 1970-01-01).
type OrgDay struct {
	Label, Version, Org string
	Day                 int64
	Jobs, Failed        int64
}

// DayOf is the UTC day number of t, as OrgDay.Day counts it.
func DayOf(t time.Time) int64 { return floorDiv(t.Unix(), 86400) }

// RingSig adds Jobs to a signature's row in a ring cohort.
type RingSig struct {
	Ring
	Signature string
	Jobs      int64
}

// VersionSig is a signature of a label's version: Jobs to add, and the
// first and last startedAt of the batch.
type VersionSig struct {
	Label, Version, Signature string
	First, Last               time.Time
	Jobs                      int64
}

// History is a pipeline's record of a signature on a version (it is also
// VersionSig's set of distinct pipelines).
type History struct {
	Label, Pipeline, Signature, Version string
	First, Last                         time.Time
	Jobs                                int64
}

// VersionOrg is one org that hit a signature on a version.
type VersionOrg struct {
	Label, Version, Signature, Org string
}

// Example is a candidate example message of a version's signature; at
// most three distinct ones per signature and batch.
type Example struct {
	Label, Version, Signature string
	Message                   string
}

// SigHour adds Jobs to a version's signature in one UTC hour (Hour:
// hours since 1970-01-01).
type SigHour struct {
	Label, Version, Signature string
	Hour                      int64
	Jobs                      int64
}

// HourOf is the UTC hour number of t, as SigHour.Hour counts it.
func HourOf(t time.Time) int64 { return floorDiv(t.Unix(), 3600) }

// Template is a signature's template.
type Template struct {
	Signature, Template string
}

// Batch is a batch of new observations, grouped.
type Batch struct {
	Exposure    []Exposure
	RingMembers []RingMember
	RingSigs    []RingSig
	VersionSigs []VersionSig
	History     []History
	VersionOrgs []VersionOrg
	Examples    []Example
	Templates   []Template
	RingOrgs    []RingOrg
	OrgDays     []OrgDay
	SigHours    []SigHour
	RingHours   []RingHour
}

// MaxExamples is how many example messages a version's signature keeps.
const MaxExamples = 3

// Group groups observations that the store found new. Events without a
// pipeline are left out (they count in job totals only), as is the
// signature part of events without a signature.
func Group(obs []rollout.Observation) Batch {
	var b Batch
	exp := map[Ring]*Exposure{}
	members := map[RingMember]bool{}
	sigs := map[RingMember]*RingSig{} // keyed with Kind/Member empty
	vsigs := map[[3]string]*VersionSig{}
	hist := map[[4]string]*History{}
	vorgs := map[VersionOrg]bool{}
	examples := map[[3]string][]string{}
	templates := map[string]string{}
	ringOrgs := map[RingOrg]int64{}       // keyed with Failed 0
	days := map[OrgDay]*OrgDay{}          // keyed with counts 0
	hours := map[SigHour]int64{}          // keyed with Jobs 0
	ringHours := map[RingHour]*RingHour{} // keyed with counts 0
	for i := range obs {
		o := &obs[i]
		if o.Pipeline == "" {
			continue
		}
		failed := o.Outcome == rollout.OutcomeFailed
		ring := Ring{o.RolloutID, o.Stage, o.Cohort}
		dk := OrgDay{Label: o.Label, Version: o.Version, Org: o.Org, Day: DayOf(o.StartedAt)}
		d := days[dk]
		if d == nil {
			d = &OrgDay{Label: dk.Label, Version: dk.Version, Org: dk.Org, Day: dk.Day}
			days[dk] = d
		}
		d.Jobs++
		if failed {
			d.Failed++
			if o.RolloutID != "" {
				ringOrgs[RingOrg{Ring: ring, Org: o.Org}]++
			}
		}
		if o.RolloutID != "" {
			e := exp[ring]
			if e == nil {
				e = &Exposure{Ring: ring}
				exp[ring] = e
			}
			e.Jobs++
			hk := RingHour{Ring: ring, Hour: HourOf(o.StartedAt)}
			rh := ringHours[hk]
			if rh == nil {
				rh = &RingHour{Ring: ring, Hour: hk.Hour}
				ringHours[hk] = rh
			}
			rh.Jobs++
			if failed {
				e.Failed++
				rh.Failed++
			}
			members[RingMember{Ring: ring, Kind: KindPipeline, Member: o.Pipeline}] = true
			members[RingMember{Ring: ring, Kind: KindOrg, Member: o.Org}] = true
		}
		if !failed || o.Signature == "" {
			continue
		}
		if o.RolloutID != "" {
			k := RingMember{Ring: ring, Signature: o.Signature}
			s := sigs[k]
			if s == nil {
				s = &RingSig{Ring: ring, Signature: o.Signature}
				sigs[k] = s
			}
			s.Jobs++
			members[RingMember{Ring: ring, Signature: o.Signature, Kind: KindPipeline, Member: o.Pipeline, Org: o.Org}] = true
			members[RingMember{Ring: ring, Signature: o.Signature, Kind: KindOrg, Member: o.Org}] = true
		}
		vk := [3]string{o.Label, o.Version, o.Signature}
		v := vsigs[vk]
		if v == nil {
			v = &VersionSig{Label: o.Label, Version: o.Version, Signature: o.Signature, First: o.StartedAt, Last: o.StartedAt}
			vsigs[vk] = v
		}
		v.Jobs++
		v.First, v.Last = minTime(v.First, o.StartedAt), maxTime(v.Last, o.StartedAt)
		hours[SigHour{Label: o.Label, Version: o.Version, Signature: o.Signature, Hour: HourOf(o.StartedAt)}]++
		hk := [4]string{o.Label, o.Pipeline, o.Signature, o.Version}
		h := hist[hk]
		if h == nil {
			h = &History{Label: o.Label, Pipeline: o.Pipeline, Signature: o.Signature, Version: o.Version, First: o.StartedAt, Last: o.StartedAt}
			hist[hk] = h
		}
		h.Jobs++
		h.First, h.Last = minTime(h.First, o.StartedAt), maxTime(h.Last, o.StartedAt)
		vorgs[VersionOrg{o.Label, o.Version, o.Signature, o.Org}] = true
		if ex := examples[vk]; len(ex) < MaxExamples && o.Example != "" && !slices.Contains(ex, o.Example) {
			examples[vk] = append(ex, o.Example)
		}
		// An observation moved to a signature's surviving id carries no
		// template (its own is the aliased id's).
		if _, ok := templates[o.Signature]; !ok && o.Template != "" {
			templates[o.Signature] = o.Template
		}
	}
	for _, e := range exp {
		b.Exposure = append(b.Exposure, *e)
	}
	slices.SortFunc(b.Exposure, func(x, y Exposure) int { return x.compare(y.Ring) })
	for m := range members {
		b.RingMembers = append(b.RingMembers, m)
	}
	slices.SortFunc(b.RingMembers, compareMember)
	for _, s := range sigs {
		b.RingSigs = append(b.RingSigs, *s)
	}
	slices.SortFunc(b.RingSigs, func(x, y RingSig) int {
		return cmp.Or(x.compare(y.Ring), cmp.Compare(x.Signature, y.Signature))
	})
	for _, v := range vsigs {
		b.VersionSigs = append(b.VersionSigs, *v)
	}
	slices.SortFunc(b.VersionSigs, func(x, y VersionSig) int {
		return cmp.Or(cmp.Compare(x.Label, y.Label), cmp.Compare(x.Version, y.Version), cmp.Compare(x.Signature, y.Signature))
	})
	for _, h := range hist {
		b.History = append(b.History, *h)
	}
	slices.SortFunc(b.History, func(x, y History) int {
		return cmp.Or(cmp.Compare(x.Label, y.Label), cmp.Compare(x.Pipeline, y.Pipeline), cmp.Compare(x.Signature, y.Signature), cmp.Compare(x.Version, y.Version))
	})
	for o := range vorgs {
		b.VersionOrgs = append(b.VersionOrgs, o)
	}
	slices.SortFunc(b.VersionOrgs, func(x, y VersionOrg) int {
		return cmp.Or(cmp.Compare(x.Label, y.Label), cmp.Compare(x.Version, y.Version), cmp.Compare(x.Signature, y.Signature), cmp.Compare(x.Org, y.Org))
	})
	for k, ms := range examples {
		for _, m := range ms {
			b.Examples = append(b.Examples, Example{k[0], k[1], k[2], m})
		}
	}
	// Stable within a key: the order the messages arrived in.
	slices.SortStableFunc(b.Examples, func(x, y Example) int {
		return cmp.Or(cmp.Compare(x.Label, y.Label), cmp.Compare(x.Version, y.Version), cmp.Compare(x.Signature, y.Signature))
	})
	for k, n := range ringOrgs {
		k.Failed = n
		b.RingOrgs = append(b.RingOrgs, k)
	}
	slices.SortFunc(b.RingOrgs, func(x, y RingOrg) int { return cmp.Or(x.compare(y.Ring), cmp.Compare(x.Org, y.Org)) })
	for _, d := range days {
		b.OrgDays = append(b.OrgDays, *d)
	}
	slices.SortFunc(b.OrgDays, func(x, y OrgDay) int {
		return cmp.Or(cmp.Compare(x.Label, y.Label), cmp.Compare(x.Version, y.Version), cmp.Compare(x.Org, y.Org), cmp.Compare(x.Day, y.Day))
	})
	for k, n := range hours {
		k.Jobs = n
		b.SigHours = append(b.SigHours, k)
	}
	slices.SortFunc(b.SigHours, func(x, y SigHour) int {
		return cmp.Or(cmp.Compare(x.Label, y.Label), cmp.Compare(x.Version, y.Version), cmp.Compare(x.Signature, y.Signature), cmp.Compare(x.Hour, y.Hour))
	})
	for _, h := range ringHours {
		b.RingHours = append(b.RingHours, *h)
	}
	slices.SortFunc(b.RingHours, func(x, y RingHour) int { return cmp.Or(x.compare(y.Ring), cmp.Compare(x.Hour, y.Hour)) })
	for s, t := range templates {
		b.Templates = append(b.Templates, Template{s, t})
	}
	slices.SortFunc(b.Templates, func(x, y Template) int { return cmp.Compare(x.Signature, y.Signature) })
	return b
}

func compareMember(x, y RingMember) int {
	return cmp.Or(x.compare(y.Ring), cmp.Compare(x.Signature, y.Signature), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Member, y.Member))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Top returns the k largest of counts, largest first (counts is
// reordered): the most affected orgs' counts a store reports.
func Top(counts []int64, k int) []int64 {
	slices.SortFunc(counts, func(a, b int64) int { return cmp.Compare(b, a) })
	if len(counts) > k {
		counts = counts[:k]
	}
	if len(counts) == 0 {
		return nil
	}
	return slices.Clip(counts)
}

// RingSigRow is one stored row of a ring cohort's signature counts.
type RingSigRow struct {
	// Raw is the id the row is stored under; ID the surviving id (Raw,
	// unless Raw is an alias of a generalised signature).
	Raw, ID, Cohort string
	// Counts holds Jobs, Pipelines and Orgs.
	Counts rollout.SignatureCounts
	// Evidence is the fresh pipelines (control and old: judged at first
	// hit; new: kept up to date), EvidenceOrgs the new cohort's orgs with
	// one.
	Evidence, EvidenceOrgs int64
}

// RingSigs sums a ring's rows into its signatures under their surviving
// ids, the same way for every store: an aliased id's counts are added to
// the surviving one's (distinct counts too: a pipeline under both counts
// twice). Rows come ordered by stored id; without aliases that is the
// order of the result, and nothing is sorted.
type RingSigs struct {
	// Index is a surviving id's position in Signatures' result.
	Index map[string]int
	// PerOrg lists the signatures whose new cohort's per-org counts the
	// store must read (SetOrgs), with Raws[i] the stored ids to read:
	// where an org has several fresh pipelines, or ids were merged.
	PerOrg []int
	Raws   map[int][]string

	alias   map[string]string // aliased stored id → surviving id
	sigs    []rollout.RingSignature
	newRaws [][]string // per signature: stored ids with new-cohort evidence
}

// Add adds one stored row.
func (r *RingSigs) Add(row RingSigRow) {
	if r.Index == nil {
		r.Index, r.alias = map[string]int{}, map[string]string{}
	}
	if row.Raw != row.ID {
		r.alias[row.Raw] = row.ID
	}
	i, ok := r.Index[row.ID]
	if !ok {
		i = len(r.sigs)
		r.Index[row.ID] = i
		r.sigs = append(r.sigs, rollout.RingSignature{ID: row.ID, Cohorts: make(map[string]rollout.SignatureCounts, 2)})
		r.newRaws = append(r.newRaws, nil)
	}
	c := r.sigs[i].Cohorts[row.Cohort]
	c.Jobs += row.Counts.Jobs
	c.Pipelines += row.Counts.Pipelines
	c.Orgs += row.Counts.Orgs
	switch row.Cohort {
	case rollout.CohortControl, rollout.CohortOld:
		c.WithoutHistory += row.Evidence
	case rollout.CohortNew:
		c.WithoutHistory += row.Evidence
		c.OrgsWithoutHistory += row.EvidenceOrgs
		if row.Evidence > 0 {
			r.newRaws[i] = append(r.newRaws[i], row.Raw)
		}
	}
	r.sigs[i].Cohorts[row.Cohort] = c
}

// Surviving returns the surviving id of a stored id of the ring.
func (r *RingSigs) Surviving(raw string) string {
	if id, ok := r.alias[raw]; ok {
		return id
	}
	return raw
}

// Signatures returns the signatures ordered by ID, without templates and
// examples, and sets Index, PerOrg and Raws.
func (r *RingSigs) Signatures() []rollout.RingSignature {
	if len(r.alias) > 0 {
		order := make([]int, len(r.sigs))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(x, y int) int { return cmp.Compare(r.sigs[x].ID, r.sigs[y].ID) })
		sigs, raws := make([]rollout.RingSignature, len(order)), make([][]string, len(order))
		for j, i := range order {
			sigs[j], raws[j] = r.sigs[i], r.newRaws[i]
			r.Index[sigs[j].ID] = j
		}
		r.sigs, r.newRaws = sigs, raws
	}
	r.Raws = map[int][]string{}
	for i := range r.sigs {
		c, ok := r.sigs[i].Cohorts[rollout.CohortNew]
		if !ok {
			continue
		}
		r.sigs[i].NewWithoutHistory = c.WithoutHistory
		if raws := r.newRaws[i]; c.WithoutHistory > c.OrgsWithoutHistory || len(raws) > 1 {
			r.PerOrg, r.Raws[i] = append(r.PerOrg, i), raws
		} else if c.WithoutHistory > 0 {
			c.TopOrgs = make([]int64, min(c.WithoutHistory, rollout.MaxTopOrgs))
			for j := range c.TopOrgs {
				c.TopOrgs[j] = 1
			}
			r.sigs[i].Cohorts[rollout.CohortNew] = c
		}
	}
	return r.sigs
}

// SetOrgs sets sig's new-cohort orgs from its fresh pipelines per org.
func SetOrgs(sig *rollout.RingSignature, byOrg map[string]int64) {
	c := sig.Cohorts[rollout.CohortNew]
	counts := make([]int64, 0, len(byOrg))
	for _, n := range byOrg {
		counts = append(counts, n)
	}
	c.OrgsWithoutHistory = int64(len(counts))
	c.TopOrgs = Top(counts, rollout.MaxTopOrgs)
	sig.Cohorts[rollout.CohortNew] = c
}

// JobMinute adds to the jobs of a label's version in one ring that
// started in one UTC minute (Minute as MinuteOf counts it): the aggregate
// CountJobs reads instead of the events. Total counts every outcome,
// Succeeded, Failed and Canceled their own.
type JobMinute struct {
	Label, Version string
	Minute         int64
	Ring           int

	Total, Succeeded, Failed, Canceled int64
}

// MinuteOf is the UTC minute number of t (minutes since 1970-01-01,
// floored) at the microseconds the stores keep of it.
func MinuteOf(t time.Time) int64 { return floorDiv(t.UnixMicro(), 60e6) }

// floorDiv is a/b rounded down, for b > 0: Go's / rounds toward zero,
// which would put a time before 1970 in the unit after its own.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// MinuteStart is the start of minute m (MinuteOf(MinuteStart(m)) == m).
func MinuteStart(m int64) time.Time { return time.UnixMicro(m * 60e6).UTC() }

// Minutes groups jobs into JobMinute rows.
type Minutes struct {
	rows map[JobMinute]*JobMinute // keyed with counts 0
}

// Add counts one job.
func (ms *Minutes) Add(label, version string, ring int, started time.Time, outcome string) {
	if ms.rows == nil {
		ms.rows = map[JobMinute]*JobMinute{}
	}
	k := JobMinute{Label: label, Version: version, Minute: MinuteOf(started), Ring: ring}
	m := ms.rows[k]
	if m == nil {
		m = &JobMinute{Label: label, Version: version, Minute: k.Minute, Ring: ring}
		ms.rows[k] = m
	}
	m.Total++
	switch outcome {
	case rollout.OutcomeSucceeded:
		m.Succeeded++
	case rollout.OutcomeFailed:
		m.Failed++
	case rollout.OutcomeCanceled:
		m.Canceled++
	}
}

// Rows returns the rows counted, sorted by key, and empties ms.
func (ms *Minutes) Rows() []JobMinute {
	out := make([]JobMinute, 0, len(ms.rows))
	for _, m := range ms.rows {
		out = append(out, *m)
	}
	ms.rows = nil
	slices.SortFunc(out, func(x, y JobMinute) int {
		return cmp.Or(cmp.Compare(x.Label, y.Label), cmp.Compare(x.Version, y.Version), cmp.Compare(x.Minute, y.Minute),
			cmp.Compare(x.Ring, y.Ring))
	})
	return out
}
