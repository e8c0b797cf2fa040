package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imagegate/imagegate/internal/rollout"
)

// telemetryTests run with the suite (Run).
var telemetryTests = []struct {
	name string
	fn   func(t *testing.T, s rollout.Store)
}{
	{"TelemetryCohorts", testTelemetryCohorts},
	{"TelemetryBackfilledHistory", testTelemetryBackfill},
	{"TelemetrySignatureAliases", testTelemetryAliases},
	{"TelemetrySignatureTrend", testTelemetryTrend},
	{"TelemetryRingHours", testTelemetryRingHours},
	{"TelemetryBatchRefusedWhole", testTelemetryRefusal},
	{"TelemetryExamplesCapped", testTelemetryExamples},
	{"TelemetryConcurrentRetries", testTelemetryConcurrent},
	{"RolloutStages", testRolloutStages},
}

// LastLineSigner is a stand-in for the signature miner (another
// package's job), for store tests only: the signature of an error text is
// its last non-empty line with numbers masked, its id a hash of that.
type LastLineSigner struct{}

var _ rollout.Signer = LastLineSigner{}

var digits = regexp.MustCompile(`\b[0-9]+\b`)

// Sign implements rollout.Signer.
func (LastLineSigner) Sign(text string) (string, string) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	tmpl := digits.ReplaceAllString(strings.TrimSpace(lines[len(lines)-1]), "<*>")
	if tmpl == "" {
		return "", ""
	}
	h := sha256.Sum256([]byte(tmpl))
	return "s-" + hex.EncodeToString(h[:6]), tmpl
}

// Clock is a clock the test moves by hand.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now implements rollout.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// OrgIn finds an org of ring (index) in or out of its control share.
func OrgIn(tb testing.TB, rings []rollout.Ring, ring int, control bool) string {
	tb.Helper()
	for i := range 100000 {
		org := fmt.Sprintf("org-%d", i)
		if rollout.RingOf(rings, org) == ring && rollout.InControl(rings[ring], org) == control {
			return org
		}
	}
	tb.Fatalf("no org in ring %d (control %v)", ring, control)
	return ""
}

// telEnv is a control plane over the store under test.
type telEnv struct {
	t     *testing.T
	s     rollout.Store
	svc   *rollout.Service
	ctl   *rollout.Controller
	clock *Clock
	rings []rollout.Ring
}

const telLabel = "img"

func newTelEnv(t *testing.T, s rollout.Store) *telEnv {
	t.Helper()
	return newTelEnvSigner(t, s, LastLineSigner{})
}

func newTelEnvSigner(t *testing.T, s rollout.Store, signer rollout.Signer) *telEnv {
	t.Helper()
	e := &telEnv{t: t, s: s, clock: NewClock(T0)}
	svc, err := rollout.NewService(ctx(t), s, rollout.ServiceOptions{Clock: e.clock, AllowUnknownGate: true, Signer: signer})
	must(t, err)
	t.Cleanup(func() { svc.Close() })
	e.svc = svc
	e.ctl = rollout.NewController(svc, s, rollout.ControllerOptions{Holder: "test", Clock: e.clock})
	e.rings = []rollout.Ring{
		{Name: "canary", Orgs: []string{"org-canary"}, BakeTime: time.Hour},
		{Name: "early", Percent: 50, ControlPercent: 30, BakeTime: time.Hour},
		{Name: "everyone", Percent: 100},
	}
	must(t, svc.SetRings(ctx(t), "test", "", e.rings))
	for _, v := range []string{"v1", "v2"} {
		_, err := svc.PushVersion(ctx(t), "test", rollout.Version{Label: telLabel, Version: v})
		must(t, err)
	}
	r, err := svc.StartRollout(ctx(t), "test", rollout.StartRequest{Label: telLabel, Version: "v1"})
	must(t, err)
	if r.State != rollout.StateCompleted {
		t.Fatalf("first rollout is %s, want completed", r.State)
	}
	return e
}

// ev is a job event started at the clock's now plus at.
func (e *telEnv) ev(id, org, version, pipeline, outcome, text string, at time.Duration) rollout.JobEvent {
	return rollout.JobEvent{JobID: id, Org: org, Label: telLabel, Version: version, Pipeline: pipeline, Outcome: outcome,
		StartedAt: e.clock.Now().Add(at), DurationMs: 1000, ErrorText: text}
}

func (e *telEnv) ingest(want int, evs ...rollout.JobEvent) {
	e.t.Helper()
	n, err := e.svc.IngestEvents(ctx(e.t), evs)
	must(e.t, err)
	if n != want {
		e.t.Fatalf("IngestEvents stored %d new events, want %d", n, want)
	}
}

func (e *telEnv) tickTo(id string, ring int) {
	e.t.Helper()
	must(e.t, e.ctl.Tick(ctx(e.t)))
	r, err := e.s.GetRollout(ctx(e.t), id)
	must(e.t, err)
	if r.State != rollout.StateBaking || r.Ring != ring {
		e.t.Fatalf("rollout is %s in ring %d, want baking in ring %d", r.State, r.Ring, ring)
	}
}

const (
	flaky   = "Run tests\nERROR: connection reset by peer after 31 retries\n"
	sqlite3 = "Traceback (most recent call last):\n  File \"app.py\", line 3\nModuleNotFoundError: No module named '_sqlite3'\n"
)

// testTelemetryCohorts runs a rollout through two rings with job events
// from every kind of org, and reads what the store aggregated.
func testTelemetryCohorts(t *testing.T, s rollout.Store) {
	e := newTelEnv(t, s)
	flakyID, _ := LastLineSigner{}.Sign(flaky)
	sqliteID, _ := LastLineSigner{}.Sign(sqlite3)
	r1, r1c, r2 := OrgIn(t, e.rings, 1, false), OrgIn(t, e.rings, 1, true), OrgIn(t, e.rings, 2, false)
	F, S := rollout.OutcomeFailed, rollout.OutcomeSucceeded

	// Last week's history on v1: pipelines p-a (ring 0) and p-h (ring 1's
	// control) already hit the flaky error.
	e.ingest(3,
		e.ev("h1", "org-canary", "v1", "p-a", F, flaky, -3*24*time.Hour),
		e.ev("h2", "org-canary", "v1", "p-a", S, "", -3*24*time.Hour),
		e.ev("h3", r1c, "v1", "p-h", F, flaky, -2*24*time.Hour))
	e.clock.Advance(time.Minute)
	r, err := e.svc.StartRollout(ctx(t), "test", rollout.StartRequest{Label: telLabel, Version: "v2"})
	must(t, err)
	// Pending: a job on v2 is flagged, one on v1 is history only.
	e.ingest(2, e.ev("pend-1", "org-canary", "v2", "p-a", S, "", 0), e.ev("pend-2", r2, "v1", "p-x", S, "", 0))
	e.clock.Advance(time.Minute)
	e.tickTo(r.ID, 0)
	stage0 := e.clock.Now()
	e.clock.Advance(10 * time.Minute)

	e.ingest(7,
		e.ev("a1", "org-canary", "v2", "p-a", F, flaky, 0),         // new, has history
		e.ev("a2", "org-canary", "v2", "p-b", F, sqlite3, 0),       // new
		e.ev("a3", "org-canary", "v2", "p-c", F, "x\n"+sqlite3, 0), // new
		e.ev("a4", r1, "v1", "p-d", F, sqlite3, 0),                 // old (ring 1 not reached)
		e.ev("a5", r1c, "v1", "p-e", S, "", 0),                     // old: control applies in ring 1 only
		e.ev("a6", r1, "v2", "p-f", F, sqlite3, 0),                 // flagged: ring 1 not reached
		e.ev("a7", "org-canary", "v2", "", F, sqlite3, 0))          // no pipeline: job totals only
	// A retry of the same jobs, overlapping, changes nothing.
	e.ingest(0, e.ev("a2", "org-canary", "v2", "p-b", F, sqlite3, 0), e.ev("a3", "org-canary", "v2", "p-c", F, sqlite3, 0))

	e.clock.Advance(time.Hour)
	e.tickTo(r.ID, 1)
	stage1 := e.clock.Now()
	e.clock.Advance(time.Minute)
	e.ingest(6,
		e.ev("b1", r1, "v2", "p-g", F, sqlite3, 0),                 // new
		e.ev("b2", r1c, "v1", "p-h", F, flaky, 0),                  // control
		e.ev("b3", r1c, "v2", "p-i", S, "", 0),                     // flagged: control org on v2
		e.ev("b4", r2, "v1", "p-j", S, "", 0),                      // old
		e.ev("b5", "org-canary", "v2", "p-b", F, sqlite3, 0),       // new (ring 0 keeps v2)
		e.ev("late", "org-canary", "v2", "p-k", S, "", -time.Hour)) // started in ring 0: counted there

	stages, err := s.RolloutStages(ctx(t), r.ID)
	must(t, err)
	if d := cmp.Diff([]rollout.Stage{{Ring: 0, StartedAt: stage0}, {Ring: 1, StartedAt: stage1}}, stages); d != "" {
		t.Errorf("RolloutStages (-want +got):\n%s", d)
	}

	got0, err := s.RingTelemetry(ctx(t), r.ID, 0)
	must(t, err)
	// History is the cohort's orgs' jobs on v1 up to the day the rollout
	// was created, that day included: org-canary's h1 and h2; r1's a4 and
	// r1c's h3, a5 and b2.
	want0 := rollout.Telemetry{RolloutID: r.ID, Stage: 0,
		Exposure: map[string]rollout.Exposure{
			rollout.CohortNew: {Pipelines: 4, Orgs: 1, Jobs: 4, Failed: 3, FailedOrgs: 1, TopOrgFailed: []int64{3},
				HistoryJobs: 2, HistoryFailed: 1},
			rollout.CohortOld: {Pipelines: 2, Orgs: 2, Jobs: 2, Failed: 1, FailedOrgs: 1, TopOrgFailed: []int64{1},
				HistoryJobs: 4, HistoryFailed: 3},
			rollout.CohortFlagged: {Pipelines: 1, Orgs: 1, Jobs: 1, Failed: 1, FailedOrgs: 1, TopOrgFailed: []int64{1},
				HistoryJobs: 1, HistoryFailed: 1},
		},
		Signatures: sortSigs([]rollout.RingSignature{
			{ID: flakyID, Template: "ERROR: connection reset by peer after <*> retries",
				Examples: []string{"Run tests\nERROR: connection reset by peer after 31 retries\n"},
				Cohorts:  map[string]rollout.SignatureCounts{rollout.CohortNew: {Pipelines: 1, Orgs: 1, Jobs: 1}}},
			{ID: sqliteID, Template: "ModuleNotFoundError: No module named '_sqlite3'",
				Examples: []string{sqlite3, "x\n" + sqlite3},
				Cohorts: map[string]rollout.SignatureCounts{
					rollout.CohortNew: {Pipelines: 2, Orgs: 1, Jobs: 2, WithoutHistory: 2, OrgsWithoutHistory: 1, TopOrgs: []int64{2}},
					// The old side's evidence is a total (counted at ingest).
					rollout.CohortOld: {Pipelines: 1, Orgs: 1, Jobs: 1, WithoutHistory: 1},
					// Flagged jobs are evidence for nothing.
					rollout.CohortFlagged: {Pipelines: 1, Orgs: 1, Jobs: 1},
				},
				NewWithoutHistory: 2},
		}),
	}
	if d := cmp.Diff(want0, got0); d != "" {
		t.Errorf("RingTelemetry ring 0 (-want +got):\n%s", d)
	}
	got1, err := s.RingTelemetry(ctx(t), r.ID, 1)
	must(t, err)
	want1 := rollout.Telemetry{RolloutID: r.ID, Stage: 1,
		Exposure: map[string]rollout.Exposure{
			// org-canary and r1.
			rollout.CohortNew: {Pipelines: 2, Orgs: 2, Jobs: 2, Failed: 2, FailedOrgs: 2, TopOrgFailed: []int64{1, 1},
				HistoryJobs: 3, HistoryFailed: 2},
			rollout.CohortControl: {Pipelines: 1, Orgs: 1, Jobs: 1, Failed: 1, FailedOrgs: 1, TopOrgFailed: []int64{1},
				HistoryJobs: 3, HistoryFailed: 2},
			rollout.CohortOld:     {Pipelines: 1, Orgs: 1, Jobs: 1, HistoryJobs: 2},
			rollout.CohortFlagged: {Pipelines: 1, Orgs: 1, Jobs: 1, HistoryJobs: 3, HistoryFailed: 2},
		},
		Signatures: sortSigs([]rollout.RingSignature{
			// p-h's flaky error on the control side is history: no evidence.
			{ID: flakyID, Template: "ERROR: connection reset by peer after <*> retries",
				Examples: []string{"Run tests\nERROR: connection reset by peer after 31 retries\n"},
				Cohorts:  map[string]rollout.SignatureCounts{rollout.CohortControl: {Pipelines: 1, Orgs: 1, Jobs: 1}}},
			{ID: sqliteID, Template: "ModuleNotFoundError: No module named '_sqlite3'",
				Examples: []string{sqlite3, "x\n" + sqlite3},
				Cohorts: map[string]rollout.SignatureCounts{rollout.CohortNew: {Pipelines: 2, Orgs: 2, Jobs: 2,
					WithoutHistory: 2, OrgsWithoutHistory: 2, TopOrgs: []int64{1, 1}}},
				// p-b hit it on v2 in ring 0, which is not history.
				NewWithoutHistory: 2},
		}),
	}
	if d := cmp.Diff(want1, got1); d != "" {
		t.Errorf("RingTelemetry ring 1 (-want +got):\n%s", d)
	}

	// Gates count jobs of the version in the ring: flagged jobs in none,
	// the job without a pipeline in ring 0.
	for _, tc := range []struct {
		version string
		ring    int
		since   time.Time
		want    int64
	}{
		{"v2", 0, stage0, 6},        // a1-a3, a7, b5, late
		{"v2", 1, stage1, 1},        // b1; b3 is flagged
		{"v2", -1, time.Time{}, 10}, // and pend-1, a6, b3 (flagged), b1
	} {
		c, err := s.CountJobs(ctx(t), telLabel, tc.version, tc.ring, tc.since)
		must(t, err)
		if c.Total != tc.want {
			t.Errorf("CountJobs(%s, ring %d) = %d, want %d", tc.version, tc.ring, c.Total, tc.want)
		}
	}

	sigs, _, err := s.ListSignatures(ctx(t), telLabel, "v2", rollout.Page{})
	must(t, err)
	var listed []string
	for _, sg := range sigs {
		listed = append(listed, fmt.Sprintf("%s %s jobs=%d pipelines=%d orgs=%d", sg.Version, sg.Template, sg.Jobs, sg.Pipelines, sg.Orgs))
	}
	wantListed := []string{
		"v2 ERROR: connection reset by peer after <*> retries jobs=1 pipelines=1 orgs=1",
		"v2 ModuleNotFoundError: No module named '_sqlite3' jobs=5 pipelines=4 orgs=2",
	}
	if flakyID > sqliteID {
		wantListed[0], wantListed[1] = wantListed[1], wantListed[0]
	}
	if d := cmp.Diff(wantListed, listed); d != "" {
		t.Errorf("ListSignatures(v2) (-want +got):\n%s", d)
	}
	for _, tc := range []struct {
		since time.Time
		want  []string
	}{
		{T0.Add(-7 * 24 * time.Hour), []string{"ERROR: connection reset by peer after <*> retries", "ModuleNotFoundError: No module named '_sqlite3'"}},
		{e.clock.Now().Add(time.Hour), nil},
	} {
		got, err := s.SignatureTemplates(ctx(t), tc.since)
		must(t, err)
		slices.Sort(got)
		if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("SignatureTemplates(%s) (-want +got):\n%s", tc.since, d)
		}
	}
	if _, err := s.RingTelemetry(ctx(t), "r-missing", 0); err == nil {
		t.Error("RingTelemetry of a missing rollout succeeded")
	} else {
		wantErr(t, "RingTelemetry of a missing rollout", err, rollout.ErrNotFound)
	}
}

// testTelemetryBackfill: the new cohort's evidence is judged at ingest,
// and history backfilled later (a job on the old version from before the
// rollout was created, reported late) takes it away again.
func testTelemetryBackfill(t *testing.T, s rollout.Store) {
	e := newTelEnv(t, s)
	sqliteID, _ := LastLineSigner{}.Sign(sqlite3)
	F := rollout.OutcomeFailed
	e.clock.Advance(time.Hour)
	r, err := e.svc.StartRollout(ctx(t), "test", rollout.StartRequest{Label: telLabel, Version: "v2"})
	must(t, err)
	e.clock.Advance(time.Minute)
	e.tickTo(r.ID, 0)
	e.clock.Advance(10 * time.Minute)
	e.ingest(3,
		e.ev("n1", "org-canary", "v2", "p-a", F, sqlite3, 0),
		e.ev("n2", "org-canary", "v2", "p-b", F, sqlite3, 0),
		e.ev("n3", "org-canary", "v2", "p-c", F, sqlite3, 0))
	check := func(step string, want rollout.SignatureCounts) {
		t.Helper()
		got, err := s.RingTelemetry(ctx(t), r.ID, 0)
		must(t, err)
		if len(got.Signatures) != 1 || got.Signatures[0].ID != sqliteID {
			t.Fatalf("%s: signatures %+v, want only %s", step, got.Signatures, sqliteID)
		}
		sig := got.Signatures[0]
		if d := cmp.Diff(want, sig.Cohorts[rollout.CohortNew]); d != "" {
			t.Errorf("%s: new cohort (-want +got):\n%s", step, d)
		}
		if sig.NewWithoutHistory != want.WithoutHistory {
			t.Errorf("%s: NewWithoutHistory = %d, want %d", step, sig.NewWithoutHistory, want.WithoutHistory)
		}
	}
	check("before backfill", rollout.SignatureCounts{Pipelines: 3, Orgs: 1, Jobs: 3, WithoutHistory: 3, OrgsWithoutHistory: 1, TopOrgs: []int64{3}})
	// p-a hit it on v1 two days before the rollout; p-c only after the
	// rollout was created, which is no history.
	e.ingest(2,
		e.ev("h1", "org-old", "v1", "p-a", F, sqlite3, -2*24*time.Hour),
		e.ev("h2", "org-old", "v1", "p-c", F, sqlite3, -5*time.Minute))
	check("p-a backfilled", rollout.SignatureCounts{Pipelines: 3, Orgs: 1, Jobs: 3, WithoutHistory: 2, OrgsWithoutHistory: 1, TopOrgs: []int64{2}})
	e.ingest(1, e.ev("h3", "org-old", "v1", "p-b", F, sqlite3, -3*24*time.Hour))
	e.ingest(1, e.ev("h4", "org-old", "v1", "p-c", F, sqlite3, -3*24*time.Hour))
	check("all backfilled", rollout.SignatureCounts{Pipelines: 3, Orgs: 1, Jobs: 3})
	// A new pipeline with history from before is no evidence either.
	e.ingest(1, e.ev("h5", "org-old", "v1", "p-d", F, sqlite3, -time.Hour-30*time.Minute))
	e.ingest(1, e.ev("n4", "org-canary", "v2", "p-d", F, sqlite3, 0))
	check("p-d", rollout.SignatureCounts{Pipelines: 4, Orgs: 1, Jobs: 4})
}

// generalisingSigner answers texts from a script: the miner generalising
// "old" into "new" on the second variant, and a replica that has not seen
// it yet still answering "old".
type generalisingSigner map[string][3]string

var _ rollout.GeneralisingSigner = generalisingSigner{}

func (g generalisingSigner) Sign(text string) (string, string) {
	a := g[text]
	return a[0], a[1]
}

func (g generalisingSigner) SignGeneralised(text string) (string, string, string) {
	a := g[text]
	return a[0], a[1], a[2]
}

// testTelemetryAliases: when a template generalises, the old id's counts
// continue under the new one, also for events still reported under the
// old id.
func testTelemetryAliases(t *testing.T, s rollout.Store) {
	signer := generalisingSigner{
		"Error: db-1 refused\n":       {"s-old", "Error: db-1 refused", ""},
		"Error: db-2 refused\n":       {"s-new", "Error: <*> refused", "s-old"},
		"late: Error: db-1 refused\n": {"s-old", "Error: db-1 refused", ""},
	}
	e := newTelEnvSigner(t, s, signer)
	F := rollout.OutcomeFailed
	// p-h's history, under the old id: still history after the merge.
	e.ingest(1, e.ev("h1", "org-old", "v1", "p-h", F, "Error: db-1 refused\n", -2*24*time.Hour))
	e.clock.Advance(time.Hour)
	r, err := e.svc.StartRollout(ctx(t), "test", rollout.StartRequest{Label: telLabel, Version: "v2"})
	must(t, err)
	e.clock.Advance(time.Minute)
	e.tickTo(r.ID, 0)
	e.clock.Advance(10 * time.Minute)
	e.ingest(1, e.ev("n1", "org-canary", "v2", "p-a", F, "Error: db-1 refused\n", 0))
	e.ingest(1, e.ev("n2", "org-canary", "v2", "p-b", F, "Error: db-2 refused\n", 0))
	e.ingest(1, e.ev("n3", "org-canary", "v2", "p-c", F, "late: Error: db-1 refused\n", 0))
	e.ingest(1, e.ev("n4", "org-canary", "v2", "p-h", F, "Error: db-2 refused\n", 0))
	got, err := s.RingTelemetry(ctx(t), r.ID, 0)
	must(t, err)
	want := []rollout.RingSignature{{ID: "s-new", Template: "Error: <*> refused",
		Examples: []string{"Error: db-2 refused\n", "late: Error: db-1 refused\n"},
		Cohorts: map[string]rollout.SignatureCounts{rollout.CohortNew: {Pipelines: 4, Orgs: 2, Jobs: 4,
			WithoutHistory: 3, OrgsWithoutHistory: 1, TopOrgs: []int64{3}}},
		NewWithoutHistory: 3}}
	if d := cmp.Diff(want, got.Signatures); d != "" {
		t.Errorf("RingTelemetry signatures (-want +got):\n%s", d)
	}
	sigs, _, err := s.ListSignatures(ctx(t), telLabel, "v2", rollout.Page{})
	must(t, err)
	var listed []string
	for _, sg := range sigs {
		listed = append(listed, fmt.Sprintf("%s %s %q jobs=%d pipelines=%d orgs=%d examples=%d", sg.Version, sg.ID, sg.Template, sg.Jobs, sg.Pipelines, sg.Orgs, len(sg.Examples)))
	}
	if d := cmp.Diff([]string{`v2 s-new "Error: <*> refused" jobs=4 pipelines=4 orgs=2 examples=3`}, listed); d != "" {
		t.Errorf("ListSignatures(v2) (-want +got):\n%s", d)
	}
}

// testTelemetryTrend: a signature listing with a window carries failed
// jobs per hour, one bucket per hour of the window, zeros included.
func testTelemetryTrend(t *testing.T, s rollout.Store) {
	e := newTelEnv(t, s)
	sqliteID, _ := LastLineSigner{}.Sign(sqlite3)
	F := rollout.OutcomeFailed
	e.clock.Advance(5 * time.Hour)
	now := e.clock.Now()
	ats := []time.Duration{-150 * time.Minute, -149 * time.Minute, 0, -10 * time.Hour} // the last outside the window
	var evs []rollout.JobEvent
	for i, at := range ats {
		evs = append(evs, e.ev(fmt.Sprint("t", i), "org-canary", "v1", fmt.Sprint("p-", i), F, sqlite3, at))
	}
	evs = append(evs, e.ev("other", "org-canary", "v1", "p-x", F, flaky, -time.Hour))
	e.ingest(len(evs), evs...)
	sigs, _, err := e.svc.SignaturesWithTrend(ctx(t), telLabel, "v1", 4*time.Hour, rollout.Page{})
	must(t, err)
	end := now.UTC().Truncate(time.Hour)
	want := make([]rollout.TrendBucket, 4)
	for i := range want {
		want[i].Hour = end.Add(time.Duration(i-3) * time.Hour)
	}
	for _, at := range ats[:3] {
		want[3-int(end.Sub(now.Add(at).UTC().Truncate(time.Hour))/time.Hour)].Jobs++
	}
	var got []rollout.TrendBucket
	for _, sg := range sigs {
		if sg.ID == sqliteID {
			got = sg.Trend
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("trend of %s over 4h (-want +got):\n%s", sqliteID, d)
	}
	sigs, _, err = e.svc.Signatures(ctx(t), telLabel, "v1", rollout.Page{})
	must(t, err)
	for _, sg := range sigs {
		if sg.Trend != nil {
			t.Errorf("listing without a window: %s has trend %v", sg.ID, sg.Trend)
		}
	}
	if _, _, err := e.svc.SignaturesWithTrend(ctx(t), telLabel, "v1", 8*24*time.Hour, rollout.Page{}); err == nil {
		t.Error("a trend window of 8 days was accepted")
	} else {
		wantErr(t, "a trend window of 8 days", err, rollout.ErrInvalid)
	}
}

// testTelemetryRingHours: a ring's jobs per cohort and hour, and the
// Service's trend of them: the new side against control and old together,
// one bucket per hour from the ring's start (zeros included), wider
// buckets once the ring has run for more than MaxTrendPoints hours.
func testTelemetryRingHours(t *testing.T, s rollout.Store) {
	e := newTelEnv(t, s)
	r1, r2 := OrgIn(t, e.rings, 1, false), OrgIn(t, e.rings, 2, false)
	F, S := rollout.OutcomeFailed, rollout.OutcomeSucceeded
	r, err := e.svc.StartRollout(ctx(t), "test", rollout.StartRequest{Label: telLabel, Version: "v2"})
	must(t, err)
	e.clock.Advance(time.Minute)
	e.tickTo(r.ID, 0) // 12:01
	e.clock.Advance(3 * time.Hour)
	e.ingest(8,
		e.ev("n1", "org-canary", "v2", "p-a", F, sqlite3, -170*time.Minute), // 12:11
		e.ev("n2", "org-canary", "v2", "p-b", S, "", -170*time.Minute),
		e.ev("o1", r1, "v1", "p-d", S, "", -170*time.Minute),
		e.ev("o2", r1, "v1", "p-e", F, flaky, -110*time.Minute),          // 13:11
		e.ev("f1", r1, "v2", "p-f", F, sqlite3, -110*time.Minute),        // flagged
		e.ev("x1", "org-canary", "v2", "", F, sqlite3, -110*time.Minute), // no pipeline: job totals only
		e.ev("n3", "org-canary", "v2", "p-c", F, sqlite3, 0),             // 15:01
		e.ev("o3", r2, "v1", "p-j", F, flaky, 0))
	e.ingest(0, e.ev("n1", "org-canary", "v2", "p-a", F, sqlite3, -170*time.Minute))

	h := func(n int) time.Time { return T0.Add(time.Duration(n) * time.Hour) }
	got, err := s.RingHours(ctx(t), r.ID, 0)
	must(t, err)
	want := []rollout.RingHour{
		{Cohort: rollout.CohortNew, Hour: h(0), Jobs: 2, Failed: 1},
		{Cohort: rollout.CohortOld, Hour: h(0), Jobs: 1},
		{Cohort: rollout.CohortFlagged, Hour: h(1), Jobs: 1, Failed: 1},
		{Cohort: rollout.CohortOld, Hour: h(1), Jobs: 1, Failed: 1},
		{Cohort: rollout.CohortNew, Hour: h(3), Jobs: 1, Failed: 1},
		{Cohort: rollout.CohortOld, Hour: h(3), Jobs: 1, Failed: 1},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("RingHours ring 0 (-want +got):\n%s", d)
	}
	for _, tc := range []struct {
		id    string
		stage int
	}{{r.ID, 1}, {"r-missing", 0}} {
		got, err := s.RingHours(ctx(t), tc.id, tc.stage)
		must(t, err)
		if len(got) != 0 {
			t.Errorf("RingHours(%s, %d) = %v, want none", tc.id, tc.stage, got)
		}
	}

	jc := func(jobs, failed int64) rollout.JobCount { return rollout.JobCount{Jobs: jobs, Failed: failed} }
	trend, err := e.svc.RingTrend(ctx(t), r.ID, 0)
	must(t, err)
	wantTrend := rollout.RingTrend{Ring: 0, Bucket: time.Hour, Buckets: []rollout.RingBucket{
		{Start: h(0), New: jc(2, 1), Old: jc(1, 0)},
		{Start: h(1), Old: jc(1, 1)},
		{Start: h(2)},
		{Start: h(3), New: jc(1, 1), Old: jc(1, 1)},
	}}
	if d := cmp.Diff(wantTrend, trend); d != "" {
		t.Errorf("RingTrend ring 0 (-want +got):\n%s", d)
	}
	// Three days later, still baking in ring 0: 76 hours are drawn in
	// 2-hour buckets.
	e.clock.Advance(72 * time.Hour)
	trend, err = e.svc.RingTrend(ctx(t), r.ID, 0)
	must(t, err)
	wantTrend = rollout.RingTrend{Ring: 0, Bucket: 2 * time.Hour, Buckets: make([]rollout.RingBucket, 38)}
	for i := range wantTrend.Buckets {
		wantTrend.Buckets[i].Start = h(2 * i)
	}
	wantTrend.Buckets[0].New, wantTrend.Buckets[0].Old = jc(2, 1), jc(2, 1)
	wantTrend.Buckets[1].New, wantTrend.Buckets[1].Old = jc(1, 1), jc(1, 1)
	if d := cmp.Diff(wantTrend, trend); d != "" {
		t.Errorf("RingTrend ring 0 after three days (-want +got):\n%s", d)
	}
	trend, err = e.svc.RingTrend(ctx(t), r.ID, 1)
	must(t, err)
	if d := cmp.Diff(rollout.RingTrend{Ring: 1, Bucket: time.Hour, Buckets: []rollout.RingBucket{}}, trend); d != "" {
		t.Errorf("RingTrend of a ring not entered (-want +got):\n%s", d)
	}
	// Ring 0 left for ring 1: a day later its trend still ends when it
	// was left.
	e.tickTo(r.ID, 1)
	e.clock.Advance(24 * time.Hour)
	trend, err = e.svc.RingTrend(ctx(t), r.ID, 0)
	must(t, err)
	if d := cmp.Diff(wantTrend, trend); d != "" {
		t.Errorf("RingTrend of ring 0 a day after it was left (-want +got):\n%s", d)
	}
	if _, err := e.svc.RingTrend(ctx(t), "r-missing", 0); err == nil {
		t.Error("RingTrend of a missing rollout succeeded")
	} else {
		wantErr(t, "RingTrend of a missing rollout", err, rollout.ErrNotFound)
	}
}

func sortSigs(sigs []rollout.RingSignature) []rollout.RingSignature {
	for i := 1; i < len(sigs); i++ {
		for j := i; j > 0 && sigs[j].ID < sigs[j-1].ID; j-- {
			sigs[j], sigs[j-1] = sigs[j-1], sigs[j]
		}
	}
	return sigs
}

// testTelemetryRefusal: one bad event refuses the batch, naming it, and
// nothing of the batch is stored.
func testTelemetryRefusal(t *testing.T, s rollout.Store) {
	e := newTelEnv(t, s)
	ok := e.ev("ok", "org-canary", "v1", "p", rollout.OutcomeSucceeded, "", 0)
	for _, tc := range []struct {
		name string
		bad  rollout.JobEvent
		want string
	}{
		{"unknown label", func() rollout.JobEvent { b := ok; b.JobID, b.Label = "bad", "nope"; return b }(), "not registered"},
		{"future", e.ev("bad", "org-canary", "v1", "p", rollout.OutcomeSucceeded, "", 6*time.Minute), "ahead"},
		{"year 9999", func() rollout.JobEvent {
			b := ok
			b.JobID, b.StartedAt = "bad", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
			return b
		}(), "ahead"},
		{"too old", e.ev("bad", "org-canary", "v1", "p", rollout.OutcomeSucceeded, "", -8*24*time.Hour), "ago"},
	} {
		_, err := e.svc.IngestEvents(ctx(t), []rollout.JobEvent{ok, ok, tc.bad, tc.bad})
		wantErr(t, tc.name, err, rollout.ErrInvalid)
		if !strings.Contains(err.Error(), "event 2 ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not name event 2 and say %q", tc.name, err, tc.want)
		}
	}
	c, err := s.CountJobs(ctx(t), telLabel, "v1", -1, time.Time{})
	must(t, err)
	if c.Total != 0 {
		t.Errorf("refused batches stored %d events", c.Total)
	}
	// Clock skew within bounds: accepted, counted as received now.
	e.ingest(2, ok, e.ev("soon", "org-canary", "v1", "p", rollout.OutcomeSucceeded, "", 4*time.Minute))
	c, err = s.CountJobs(ctx(t), telLabel, "v1", -1, e.clock.Now().Add(time.Second))
	must(t, err)
	if c.Total != 0 {
		t.Errorf("%d events count after the moment they were received", c.Total)
	}
}

// testTelemetryExamples: a version's signature keeps three examples,
// RingTelemetry shows two.
func testTelemetryExamples(t *testing.T, s rollout.Store) {
	e := newTelEnv(t, s)
	var evs []rollout.JobEvent
	for i := range 6 {
		evs = append(evs, e.ev(fmt.Sprint("j", i), "org-canary", "v1", fmt.Sprint("p", i%2), rollout.OutcomeFailed,
			fmt.Sprintf("step %d\nERROR: exit code %d\n", i, i), 0))
	}
	e.ingest(3, evs[:3]...)
	e.ingest(3, evs[3:]...)
	sigs, next, err := s.ListSignatures(ctx(t), telLabel, "", rollout.Page{})
	must(t, err)
	if len(sigs) != 1 || next != "" {
		t.Fatalf("ListSignatures = %+v, %q; want one signature", sigs, next)
	}
	want := []string{"step 0\nERROR: exit code 0\n", "step 1\nERROR: exit code 1\n", "step 2\nERROR: exit code 2\n"}
	if d := cmp.Diff(want, sigs[0].Examples); d != "" {
		t.Errorf("examples (-want +got):\n%s", d)
	}
	if sigs[0].Jobs != 6 || sigs[0].Pipelines != 2 || sigs[0].Orgs != 1 || !sigs[0].FirstSeen.Equal(T0) || !sigs[0].LastSeen.Equal(T0) {
		t.Errorf("signature counts %+v", sigs[0])
	}

	// Paging: one signature per page, in (version, id) order.
	for i := range 3 {
		e.ingest(1, e.ev(fmt.Sprint("k", i), "org-canary", "v2", "p", rollout.OutcomeFailed, fmt.Sprintf("fatal: kind %c\n", 'a'+i), 0))
	}
	var pages []string
	p := rollout.Page{Limit: 1}
	for {
		got, next, err := s.ListSignatures(ctx(t), telLabel, "", p)
		must(t, err)
		for _, sg := range got {
			pages = append(pages, sg.Version+" "+sg.Template)
		}
		if next == "" {
			break
		}
		p.After = next
	}
	if len(pages) != 4 || pages[0] != "v1 ERROR: exit code <*>" {
		t.Errorf("paged signatures %q, want v1's then v2's three", pages)
	}
}

// testTelemetryConcurrent: replicas retrying the same batches at once
// count every event once in every aggregate.
func testTelemetryConcurrent(t *testing.T, s rollout.Store) {
	e := newTelEnv(t, s)
	var evs []rollout.JobEvent
	for i := range 200 {
		text := ""
		out := rollout.OutcomeSucceeded
		if i%4 == 0 {
			out, text = rollout.OutcomeFailed, fmt.Sprintf("ERROR: sig %d\n", i%3)
		}
		evs = append(evs, e.ev(fmt.Sprint("j", i), fmt.Sprint("org-", i%9), "v1", fmt.Sprint("p", i%13), out, text, 0))
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for w := range 6 {
		wg.Go(func() {
			for b := range 4 {
				chunk := evs[((b+w)%4)*50 : ((b+w)%4+1)*50]
				if _, err := e.svc.IngestEvents(context.Background(), chunk); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	sigs, _, err := s.ListSignatures(ctx(t), telLabel, "v1", rollout.Page{})
	must(t, err)
	var jobs int64
	for _, sg := range sigs {
		jobs += sg.Jobs
		// The 50 failed events (i = 0, 4, ... 196) cover every
		// pipeline (i%13) and every org (i%9).
		if sg.Pipelines != 13 || sg.Orgs != 9 {
			t.Errorf("signature %s: %d pipelines, %d orgs; want 13 and 9", sg.Template, sg.Pipelines, sg.Orgs)
		}
	}
	if len(sigs) != 1 || jobs != 50 {
		t.Errorf("%d signatures with %d jobs, want 1 with 50", len(sigs), jobs)
	}
}

// testRolloutStages: the store records each ring a rollout enters, by
// whichever write moves it, and nothing for a pending one.
func testRolloutStages(t *testing.T, s rollout.Store) {
	MustVersion(t, s, "img", "v1")
	r := newRollout("img", "v1")
	r.State, r.RingStartedAt = rollout.StatePending, time.Time{}
	must(t, s.CreateRollout(ctx(t), &r, nil, Audit("rollout.start", "rollout/x")))
	got, err := s.RolloutStages(ctx(t), r.ID)
	must(t, err)
	if len(got) != 0 {
		t.Errorf("stages of a pending rollout: %+v", got)
	}
	r.State, r.Ring, r.RingStartedAt = rollout.StateBaking, 0, T0.Add(time.Minute)
	must(t, s.UpdateRollout(ctx(t), &r, Audit("rollout.ring", "rollout/"+r.ID)))
	r.Reason = "unrelated change"
	must(t, s.UpdateRollout(ctx(t), &r, Audit("rollout.pause", "rollout/"+r.ID)))
	r.Ring, r.RingStartedAt = 1, T0.Add(time.Hour)
	must(t, s.UpdateRollout(ctx(t), &r, Audit("rollout.ring", "rollout/"+r.ID)))
	r.State = rollout.StateCompleted
	must(t, s.UpdateRollout(ctx(t), &r, Audit("rollout.complete", "rollout/"+r.ID)))
	got, err = s.RolloutStages(ctx(t), r.ID)
	must(t, err)
	want := []rollout.Stage{{Ring: 0, StartedAt: T0.Add(time.Minute)}, {Ring: 1, StartedAt: T0.Add(time.Hour)}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("RolloutStages (-want +got):\n%s", d)
	}
	// A rollout stored already in a ring (a first version completes at once).
	done := newRollout("img", "v1")
	done.State = rollout.StateCompleted
	must(t, s.CreateRollout(ctx(t), &done, nil, Audit("rollout.start", "rollout/y")))
	got, err = s.RolloutStages(ctx(t), done.ID)
	must(t, err)
	if d := cmp.Diff([]rollout.Stage{{Ring: 0, StartedAt: T0}}, got); d != "" {
		t.Errorf("RolloutStages of a rollout created baking (-want +got):\n%s", d)
	}
}
