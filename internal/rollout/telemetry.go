package rollout

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Cohorts: which side of a rollout's comparison a job event is on. The
// server assigns them from the org and the rollout's state when the job
// started, with the rules of resolve (Route.Decide, RingOf, InControl).
const (
	// CohortNew: the org was routed to the rollout's version then, and
	// the job reports that version.
	CohortNew = "new"
	// CohortControl: the org was in the control share of the ring the
	// rollout baked in, on the old version (FromVersion).
	CohortControl = "control"
	// CohortOld: any other org on the old version while the rollout ran.
	CohortOld = "old"
	// CohortFlagged: a job on the rollout's version from an org the
	// rollout did not route to it then (a control org, a later ring, a
	// pending rollout). Stored, counted in no gate.
	CohortFlagged = "flagged"
)

// Limits on job events.
const (
	// MaxErrorText is how much of a failed job's error text is kept: the
	// last lines, up to this many bytes.
	MaxErrorText = 8 << 10
	// MaxExample bounds each example message kept with a signature.
	MaxExample = 1 << 10
	// MaxEventAge: events may report jobs up to a week old (late reports,
	// a new installation's history); older ones are refused.
	MaxEventAge = 7 * 24 * time.Hour
	// MaxClockSkew: a startedAt further than this ahead of the server's
	// clock is refused.
	MaxClockSkew = 5 * time.Minute
	maxPipeline  = 512
)

// Signer gives a failed job's error text its signature. The miner lives
// in its own package; the Service only needs this.
//
// Contract: id is derived from the template alone, so it is the same on
// every replica and after restarts; id "" means the text yields no
// signature. Safe for concurrent use.
type Signer interface {
	Sign(errorText string) (id, template string)
}

// GeneralisingSigner is what a Signer may offer besides Sign: previous is
// the id the signature had before this text generalised its template ("",
// when it did not). The store then records previous as an alias of id and
// reads previous's counts as id's: the same failure, now known to vary in
// one more place. Contract as Sign's.
type GeneralisingSigner interface {
	SignGeneralised(errorText string) (id, template, previous string)
}

// Observation is a job event as the server read it: the event (Ring
// replaced by the ring it counts in for gates, -1 for none; StartedAt no
// later than ReceivedAt) and what it means for the analysis.
type Observation struct {
	JobEvent
	ReceivedAt time.Time
	// RolloutID and Stage name the rollout the job ran under and the ring
	// index that rollout baked in when the job started (-1: pending);
	// RolloutID is "" for a job under no rollout (history).
	RolloutID string
	Stage     int
	Cohort    string // one of the Cohort* values, "" without a rollout
	// Signature and Template come from the Signer, for failed jobs with a
	// pipeline; Example is the error text's tail (MaxExample bytes).
	Signature, Template, Example string
	// PreviousSignature is the id Signature had before this job's text
	// generalised its template (GeneralisingSigner), else "": the store
	// merges it into Signature.
	PreviousSignature string
}

// Stage is a ring a rollout entered, and when.
type Stage struct {
	Ring      int       `json:"ring"`
	StartedAt time.Time `json:"startedAt"`
}

// MaxTopOrgs is how many of the most affected orgs a cohort's counts
// name (Exposure.TopOrgFailed, SignatureCounts.TopOrgs): enough for the
// analysis to leave out minOrgs−1 of them.
const MaxTopOrgs = 10

// Exposure counts the jobs of one cohort of a rollout's ring (events with
// a pipeline only).
type Exposure struct {
	Pipelines int64 `json:"pipelines"` // distinct
	Orgs      int64 `json:"orgs"`      // distinct
	Jobs      int64 `json:"jobs"`
	Failed    int64 `json:"failed"`
	// FailedOrgs counts the distinct orgs with a failed job; TopOrgFailed
	// holds the failed jobs of the MaxTopOrgs orgs with the most of them,
	// largest first.
	FailedOrgs   int64   `json:"failedOrgs"`
	TopOrgFailed []int64 `json:"topOrgFailed,omitempty"`
	// HistoryJobs and HistoryFailed count the jobs of the cohort's orgs on
	// the rollout's old version (FromVersion) in the UTC days up to and
	// including the one the rollout was created on: how often these orgs
	// fail anyway. Day-grained, so that reading it costs a few rows per
	// org; computed when read, so history backfilled later counts.
	HistoryJobs   int64 `json:"historyJobs"`
	HistoryFailed int64 `json:"historyFailed"`
}

// SignatureCounts counts the failed jobs of one cohort with a signature.
type SignatureCounts struct {
	Pipelines int64 `json:"pipelines"` // distinct
	Orgs      int64 `json:"orgs"`      // distinct
	Jobs      int64 `json:"jobs"`
	// WithoutHistory counts the pipelines that had not produced the
	// signature on another version of the label before the rollout was
	// created: the evidence. For the new cohort it is computed when read
	// (history backfilled later counts), with OrgsWithoutHistory their
	// distinct orgs and TopOrgs the evidence pipelines of the MaxTopOrgs
	// orgs with the most of them, largest first. For the control and old
	// cohorts (the fleet-sized side, which the analysis reads as totals)
	// it is judged when each pipeline first hits the signature in the
	// ring, and the per-org fields stay empty. Not computed for flagged.
	WithoutHistory     int64   `json:"withoutHistory"`
	OrgsWithoutHistory int64   `json:"orgsWithoutHistory"`
	TopOrgs            []int64 `json:"topOrgs,omitempty"`
}

// RingSignature is one signature seen in a rollout's ring.
type RingSignature struct {
	ID       string `json:"id"`
	Template string `json:"template"`
	// Examples: up to two messages, of the rollout's version when it has
	// any, else of its old version.
	Examples []string                   `json:"examples,omitempty"`
	Cohorts  map[string]SignatureCounts `json:"cohorts"`
	// NewWithoutHistory is Cohorts[CohortNew].WithoutHistory: the new
	// cohort's pipelines that had not produced this signature on any other
	// version of the label before the rollout was created.
	NewWithoutHistory int64 `json:"newWithoutHistory"`
}

// Telemetry is what the analysis reads for one ring of a rollout.
type Telemetry struct {
	RolloutID string              `json:"rolloutId"`
	Stage     int                 `json:"stage"`
	Exposure  map[string]Exposure `json:"exposure"` // by cohort
	// Signatures are ordered by ID.
	Signatures []RingSignature `json:"signatures"`
}

// Signature is one signature of a label's version, for listing.
type Signature struct {
	Label     string    `json:"label"`
	Version   string    `json:"version"`
	ID        string    `json:"id"`
	Template  string    `json:"template"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	Jobs      int64     `json:"jobs"`
	Pipelines int64     `json:"pipelines"` // distinct
	Orgs      int64     `json:"orgs"`      // distinct
	Examples  []string  `json:"examples,omitempty"`
	// Trend is the failed jobs per UTC hour over the window asked for,
	// oldest first, one bucket per hour (zeros included); empty when no
	// window was asked for.
	Trend []TrendBucket `json:"trend,omitempty"`
}

// TrendBucket is one hour of a signature's trend.
type TrendBucket struct {
	Hour time.Time `json:"hour"` // the start of the UTC hour
	Jobs int64     `json:"jobs"`
}

// MaxTrendWindow bounds a signature listing's trend window: the events
// the server accepts are at most this old anyway.
const MaxTrendWindow = MaxEventAge

// CutErrorText keeps the end of s: whole lines from the end while they fit
// in max bytes; a last line longer than max keeps its last max bytes (at a
// character boundary). Invalid UTF-8 and NUL bytes, which PostgreSQL text
// refuses, are replaced first.
func CutErrorText(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if len(s) <= max {
		return s
	}
	tail := s[len(s)-max:]
	switch i := strings.IndexByte(tail, '\n'); {
	case s[len(s)-max-1] == '\n':
		// The tail starts a line.
	case i >= 0 && i+1 < len(tail):
		tail = tail[i+1:]
	default:
		// The last line alone is longer than max.
		for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
			tail = tail[1:]
		}
	}
	return tail
}

// ingestEvents validates a batch, reads what each event means and stores
// the batch with its aggregates in one call.
//
// Time: an event's startedAt is taken as at most the moment the server
// received it (a job cannot have started after it was reported), so a
// runner cannot place jobs in a ring window that had not begun when it
// reported them — the events dated 9999 of old. Whole-batch refusal
// (ErrInvalid naming the first bad event): an unknown label, startedAt
// more than MaxClockSkew ahead, or more than MaxEventAge back.
func (s *Service) ingestEvents(ctx context.Context, events []JobEvent) (int, error) {
	if len(events) > MaxEventBatch {
		return 0, fmt.Errorf("batch of %d events: send at most %d per request: %w", len(events), MaxEventBatch, ErrInvalid)
	}
	if len(events) == 0 {
		return 0, nil
	}
	// Events are read against the routing table resolve uses (as stale as
	// resolve's answers, RefreshInterval at most); an image registered on
	// another replica a moment ago is looked for once more.
	table := s.table.Load()
	for i := range events {
		if table.routes[events[i].Label] == nil {
			if err := s.refresh(ctx); err != nil {
				return 0, err
			}
			table = s.table.Load()
			break
		}
	}
	now := s.clock.Now()
	for i := range events {
		if err := s.checkIngest(table, &events[i], now); err != nil {
			return 0, fmt.Errorf("event %d (jobId %q): %w", i, events[i].JobID, err)
		}
	}
	obs := make([]Observation, len(events))
	for i, e := range events {
		tl, err := s.timelines.get(ctx, s, table.gen, e.Label, now)
		if err != nil {
			return 0, err
		}
		o := &obs[i]
		o.JobEvent, o.ReceivedAt = e, now
		if o.StartedAt.After(now) {
			o.StartedAt = now
		}
		o.ErrorText = CutErrorText(o.ErrorText, MaxErrorText)
		tl.classify(o, table.routes[e.Label])
		if e.Outcome == OutcomeFailed && e.Pipeline != "" && s.opts.Signer != nil {
			if g, ok := s.opts.Signer.(GeneralisingSigner); ok {
				o.Signature, o.Template, o.PreviousSignature = g.SignGeneralised(o.ErrorText)
			} else {
				o.Signature, o.Template = s.opts.Signer.Sign(o.ErrorText)
			}
			if o.Signature != "" {
				o.Example = CutErrorText(o.ErrorText, MaxExample)
			}
		}
	}
	n, err := s.st.AppendObservations(ctx, obs)
	return n, errWrap(err, "store %d events", len(events))
}

func (s *Service) checkIngest(table *routingTable, e *JobEvent, now time.Time) error {
	if err := checkEvent(*e); err != nil {
		return err
	}
	if table.routes[e.Label] == nil {
		return fmt.Errorf("image %q is not registered (push a version of it first): %w", e.Label, ErrInvalid)
	}
	switch {
	case e.StartedAt.After(now.Add(MaxClockSkew)):
		return fmt.Errorf("startedAt %s is more than %s ahead of the server's clock (%s): check the runner's clock: %w",
			e.StartedAt.UTC().Format(time.RFC3339), MaxClockSkew, now.UTC().Format(time.RFC3339), ErrInvalid)
	case e.StartedAt.Before(now.Add(-MaxEventAge)):
		return fmt.Errorf("startedAt %s is more than %s ago: events older than a week are not accepted: %w",
			e.StartedAt.UTC().Format(time.RFC3339), MaxEventAge, ErrInvalid)
	case len(e.Pipeline) > maxPipeline || strings.IndexFunc(e.Pipeline, notPrintable) >= 0:
		return fmt.Errorf("pipeline %.40q: want at most %d printable bytes: %w", e.Pipeline, maxPipeline, ErrInvalid)
	case len(e.RunID) > maxPipeline || strings.IndexFunc(e.RunID, notPrintable) >= 0:
		return fmt.Errorf("runId %.40q: want at most %d printable bytes: %w", e.RunID, maxPipeline, ErrInvalid)
	}
	return nil
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }

// RingTelemetry returns the aggregates of rollout id's ring stage.
func (s *Service) RingTelemetry(ctx context.Context, id string, stage int) (Telemetry, error) {
	if stage < 0 {
		return Telemetry{}, fmt.Errorf("telemetry of rollout %s: ring %d: %w", id, stage, ErrInvalid)
	}
	t, err := s.st.RingTelemetry(ctx, id, stage)
	return t, errWrap(err, "telemetry of rollout %s in ring %d", id, stage)
}

// Signatures lists the signatures seen on label (of version when given).
func (s *Service) Signatures(ctx context.Context, label, version string, p Page) ([]Signature, string, error) {
	return s.SignaturesWithTrend(ctx, label, version, 0, p)
}

// SignaturesWithTrend is Signatures with, for a window above 0, each
// signature's trend over the window's hours up to now (the current hour
// included).
func (s *Service) SignaturesWithTrend(ctx context.Context, label, version string, window time.Duration, p Page) ([]Signature, string, error) {
	if window < 0 || window > MaxTrendWindow {
		return nil, "", fmt.Errorf("trend window %s: want at most %s: %w", window, MaxTrendWindow, ErrInvalid)
	}
	sigs, next, err := s.st.ListSignatures(ctx, label, version, normPage(p))
	if err != nil || window == 0 || len(sigs) == 0 {
		return sigs, next, errWrap(err, "signatures of %s %s", label, version)
	}
	end := s.clock.Now().UTC().Truncate(time.Hour)
	n := int((window + time.Hour - 1) / time.Hour)
	start := end.Add(-time.Duration(n-1) * time.Hour)
	keys := make([]SignatureKey, len(sigs))
	at := make(map[SignatureKey]int, len(sigs))
	for i := range sigs {
		keys[i] = SignatureKey{sigs[i].Version, sigs[i].ID}
		at[keys[i]] = i
		sigs[i].Trend = make([]TrendBucket, n)
		for h := range sigs[i].Trend {
			sigs[i].Trend[h].Hour = start.Add(time.Duration(h) * time.Hour)
		}
	}
	hours, err := s.st.SignatureHours(ctx, label, keys, start)
	if err != nil {
		return nil, "", errWrap(err, "signature trends of %s %s", label, version)
	}
	for _, h := range hours {
		i, ok := at[h.SignatureKey]
		if b := int(h.Hour.Sub(start) / time.Hour); ok && b >= 0 && b < n {
			sigs[i].Trend[b].Jobs += h.Jobs
		}
	}
	return sigs, next, nil
}

// timelines caches, per label, the recent rollouts with the rings they
// went through, valid for one store generation (every rollout change
// bumps it).
type timelines struct {
	mu      sync.Mutex
	gen     int64
	byLabel map[string]*timeline
}

// timeline is a label's rollouts that may have run within MaxEventAge,
// newest first.
type timeline struct {
	spans []span
}

type span struct {
	r      Rollout
	stages []Stage
	end    time.Time // zero while the rollout is not terminal
}

// maxSpans bounds how many rollouts of one label are looked at.
const maxSpans = 200

func (t *timelines) get(ctx context.Context, s *Service, gen int64, label string, now time.Time) (*timeline, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byLabel == nil || t.gen != gen {
		t.byLabel, t.gen = map[string]*timeline{}, gen
	}
	if tl := t.byLabel[label]; tl != nil {
		return tl, nil
	}
	horizon := now.Add(-MaxEventAge - MaxClockSkew)
	tl := &timeline{}
	var ferr error
	err := each(ctx, func(p Page) ([]Rollout, string, error) { return s.st.ListRollouts(ctx, label, nil, p) }, func(r Rollout) bool {
		sp := span{r: r}
		if Terminal(r.State) {
			sp.end = r.UpdatedAt
			if sp.end.Before(horizon) {
				return false // older rollouts ended earlier still
			}
		}
		if r.FromVersion == "" {
			return true // a first version: nothing to compare with
		}
		sp.stages, ferr = s.st.RolloutStages(ctx, r.ID)
		if ferr != nil {
			return false
		}
		tl.spans = append(tl.spans, sp)
		return len(tl.spans) < maxSpans
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return nil, errWrap(err, "read rollouts of %s", label)
	}
	t.byLabel[label] = tl
	return tl, nil
}

// classify sets o's Ring, RolloutID, Stage and Cohort from the rollout of
// its label that ran when the job started (o.StartedAt). Pins are not
// looked at: a pinned org's job counts as its version and ring say.
func (tl *timeline) classify(o *Observation, rt *Route) {
	o.Stage = -1
	t := o.StartedAt
	for i := range tl.spans {
		sp := &tl.spans[i]
		if t.Before(sp.r.CreatedAt) || (!sp.end.IsZero() && !t.Before(sp.end)) {
			continue
		}
		r := &sp.r
		stage := -1
		for _, st := range sp.stages {
			if !t.Before(st.StartedAt) && st.Ring >= 0 && st.Ring < len(r.Rings) {
				stage = st.Ring
			}
		}
		ring := RingOf(r.Rings, o.Org)
		control := stage >= 0 && ring == stage && InControl(r.Rings[stage], o.Org)
		routed := stage >= 0 && ring >= 0 && ring <= stage && !control
		switch {
		case o.Version == r.Version && routed:
			o.Ring, o.RolloutID, o.Stage, o.Cohort = ring, r.ID, stage, CohortNew
		case o.Version == r.Version:
			// Counted in no ring, so no gate sees it.
			o.Ring, o.RolloutID, o.Stage, o.Cohort = -1, r.ID, stage, CohortFlagged
		case o.Version == r.FromVersion && stage >= 0:
			o.Ring, o.RolloutID, o.Stage, o.Cohort = ring, r.ID, stage, CohortOld
			if control {
				o.Cohort = CohortControl
			}
		default:
			// Another version, or the old one before the rollout began:
			// history only.
			o.Ring = ring
		}
		return
	}
	o.Ring = -1
	if rt != nil {
		o.Ring = RingOf(rt.Rings, o.Org)
	}
}
