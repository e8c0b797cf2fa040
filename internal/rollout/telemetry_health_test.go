package rollout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/signature"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

// fleet is a simulated installation reporting job events: ring-0 orgs
// that are busier and flakier than the rest on every version, background
// failures over many signatures, and whatever a scenario adds.
type fleet struct {
	t      *testing.T
	ctx    context.Context
	db     *sqlite.DB
	svc    *rollout.Service
	ctl    *rollout.Controller
	clock  *testenv.Clock
	rng    *rand.Rand
	notes  *notes
	rings  []rollout.Ring
	orgs   []fleetOrg
	jobs   int
	broken func(org string, pipeline int, version string, at time.Time) string // error text, "" when it passes
}

type fleetOrg struct {
	name      string
	pipelines int
	failRate  float64
}

const (
	fleetLabel = "ubuntu-22.04"
	ring0Orgs  = 20
)

// notes records what the Service told its Notifier.
type notes struct {
	mu  sync.Mutex
	got []rollout.Notice
}

func (n *notes) Notify(_ context.Context, x rollout.Notice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, x)
	return nil
}

func (n *notes) all() []rollout.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]rollout.Notice(nil), n.got...)
}

var _ rollout.Notifier = (*notes)(nil)

// background holds error texts of unrelated failures: different first
// words and lengths, so that they are as many signatures.
var background = func() []string {
	words := strings.Fields("connection reset while fetching the remote index of dependencies for the build cache layer")
	var out []string
	for _, lead := range []string{"ERROR:", "FAIL:", "fatal:", "Error:"} {
		for n := 3; n < len(words); n++ {
			out = append(out, fmt.Sprintf("Run step\n%s %s\n", lead, strings.Join(words[:n], " ")))
		}
	}
	return out
}()

const (
	sqliteTraceback = "Run python -m app.migrate\nTraceback (most recent call last):\n" +
		"  File \"/home/runner/work/app/app/migrate.py\", line 3, in <module>\n    import sqlite3\n" +
		"  File \"/opt/hostedtoolcache/Python/3.7.16/x64/lib/python3.7/sqlite3/__init__.py\", line 23, in <module>\n" +
		"    from sqlite3.dbapi2 import *\nModuleNotFoundError: No module named '_sqlite3'\n" +
		"Error: Process completed with exit code 1.\n"
	outage = "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: TLS handshake timeout\n"
	storm  = "FAIL: test_checkout_flow (tests.e2e.CheckoutTest) flaky selenium timeout waiting for element\n"
)

func newFleet(t *testing.T, policy rollout.AnalysisPolicies, oldSnap, newSnap []byte) *fleet {
	t.Helper()
	f := &fleet{t: t, ctx: context.Background(), clock: testenv.NewClock(t0), rng: rand.New(rand.NewPCG(7, 11)), notes: &notes{}}
	db, err := sqlite.Open(f.ctx, filepath.Join(t.TempDir(), "imagegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	health := rollout.NewTelemetryHealth(db, policy, nil)
	f.db = db
	f.svc, err = rollout.NewService(f.ctx, db, rollout.ServiceOptions{Clock: f.clock, AllowUnknownGate: true, Health: health, Analyzer: health,
		Signer: signature.NewSigner(signature.Options{}, nil), Notifier: f.notes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.svc.Close() })
	f.ctl = rollout.NewController(f.svc, db, rollout.ControllerOptions{Holder: "test", Clock: f.clock})

	var canary []string
	for i := range ring0Orgs {
		// Ring 0: the platform's busiest orgs, twice as flaky as the
		// fleet on every version.
		o := fleetOrg{name: fmt.Sprintf("r0-%02d", i), pipelines: 40, failRate: 0.10 + 0.01*float64(i%5)}
		f.orgs = append(f.orgs, o)
		canary = append(canary, o.name)
	}
	for i := range 400 {
		f.orgs = append(f.orgs, fleetOrg{name: fmt.Sprintf("org-%03d", i), pipelines: 20, failRate: 0.04 + 0.01*float64(i%3)})
	}
	f.rings = []rollout.Ring{
		{Name: "canary", Orgs: canary, BakeTime: time.Hour},
		{Name: "early", Percent: 30, ControlPercent: 20, BakeTime: time.Hour},
		{Name: "everyone", Percent: 100},
	}
	f.must(f.svc.SetRings(f.ctx, "test", "", f.rings))
	for _, v := range []struct {
		name string
		snap []byte
	}{{"v1", oldSnap}, {"v2", newSnap}} {
		_, err := f.svc.PushVersion(f.ctx, "test", rollout.Version{Label: fleetLabel, Version: v.name, Snapshot: v.snap})
		f.must(err)
	}
	_, err = f.svc.StartRollout(f.ctx, "test", rollout.StartRequest{Label: fleetLabel, Version: "v1"})
	f.must(err)

	// Last days' history on v1, backfilled: how flaky each org is anyway.
	for h := 72; h > 0; h -= 2 {
		f.run(f.clock.Now().Add(-time.Duration(h)*time.Hour), 0.1)
	}
	return f
}

func (f *fleet) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// run reports one round of jobs started at at: each pipeline runs with
// probability p, on the version resolve gives its org.
func (f *fleet) run(at time.Time, p float64) {
	f.t.Helper()
	var batch []rollout.JobEvent
	for _, o := range f.orgs {
		for pl := range o.pipelines {
			if f.rng.Float64() >= p {
				continue
			}
			res, err := f.svc.Resolve(f.ctx, o.name, fleetLabel, "")
			f.must(err)
			f.jobs++
			e := rollout.JobEvent{JobID: fmt.Sprintf("j%d", f.jobs), Org: o.name, Label: fleetLabel, Version: res.Version,
				Pipeline: fmt.Sprintf("%s/repo-%d/.github/workflows/ci.yml", o.name, pl), StartedAt: at, DurationMs: 60_000,
				Outcome: rollout.OutcomeSucceeded}
			text := ""
			if f.broken != nil {
				text = f.broken(o.name, pl, res.Version, at)
			}
			if text == "" && f.rng.Float64() < o.failRate {
				// Zipf-like: the first background signatures are the common ones.
				text = background[int(float64(len(background))*f.rng.Float64()*f.rng.Float64())]
			}
			if text != "" {
				e.Outcome, e.ErrorText = rollout.OutcomeFailed, text
			}
			batch = append(batch, e)
		}
	}
	for len(batch) > 0 {
		n := min(len(batch), rollout.MaxEventBatch)
		_, err := f.svc.IngestEvents(f.ctx, batch[:n])
		f.must(err)
		batch = batch[n:]
	}
}

// tick runs a minute of jobs, moves the clock and reconciles.
func (f *fleet) tick() rollout.Rollout {
	f.t.Helper()
	f.run(f.clock.Now(), 0.05)
	f.clock.Advance(time.Minute)
	f.must(f.ctl.Tick(f.ctx))
	rs, _, err := f.svc.ListRollouts(f.ctx, fleetLabel, nil, rollout.Page{Limit: 1})
	f.must(err)
	return rs[0]
}

func (f *fleet) start() rollout.Rollout {
	f.t.Helper()
	r, err := f.svc.StartRollout(f.ctx, "test", rollout.StartRequest{Label: fleetLabel, Version: "v2"})
	f.must(err)
	return r
}

func (f *fleet) audit(id, action string) []rollout.AuditEntry {
	f.t.Helper()
	es, _, err := f.svc.Audit(f.ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + id}, rollout.Page{Limit: 1000})
	f.must(err)
	var out []rollout.AuditEntry
	for _, e := range es {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// pipelineShare picks a stable share of pipelines (the ones that use
// sqlite3, say).
func pipelineShare(org string, pipeline int, percent uint32) bool {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", org, pipeline)
	return h.Sum32()%100 < percent
}

// TestAAStreamNeverHalts: identical versions, ring 0 flakier than the
// fleet, background failures over many signatures, one org's new flaky
// test on the new version only and a registry outage hitting everyone:
// checked every simulated minute, the rollout is never stopped, and it
// leaves ring 0 on a pass.
func TestAAStreamNeverHalts(t *testing.T) {
	snap := []byte(`{"schema":"imagegate/snapshot/v1"}`)
	f := newFleet(t, rollout.AnalysisPolicies{}, snap, snap)
	r := f.start()
	startedAt := f.clock.Now()
	f.broken = func(org string, pl int, version string, at time.Time) string {
		switch {
		case at.Sub(startedAt) > 90*time.Minute && at.Sub(startedAt) < 100*time.Minute && f.rng.Float64() < 0.3:
			return outage // both versions
		case org == "r0-03" && version == "v2" && f.rng.Float64() < 0.5:
			return storm // one org's problem
		}
		return ""
	}
	left0 := false
	var got rollout.Rollout
	defer func() { t.Logf("%d jobs; the rollout ended %s in ring %d", f.jobs, got.State, got.Ring) }()
	minutes, wantPasses := 300, 2
	if raceEnabled {
		// Past Ring 0's pass and the outage; see race_test.go.
		minutes, wantPasses = 110, 1
	}
	for i := 0; i < minutes; i++ {
		got = f.tick()
		if got.State == rollout.StateHalted || got.State == rollout.StateRolledBack {
			t.Fatalf("minute %d: an A/A rollout was stopped: %s", i, got.Reason)
		}
		if got.Ring > 0 || got.State == rollout.StateCompleted {
			left0 = true
		}
		if got.State == rollout.StateCompleted {
			break
		}
	}
	if !left0 {
		a, err := f.svc.Analysis(f.ctx, r.ID)
		f.must(err)
		t.Fatalf("the A/A rollout never left ring 0: %s", a.Rings[0].Decision.Why)
	}
	passes := f.audit(r.ID, "rollout.ring")
	if len(passes) < wantPasses || !strings.Contains(passes[0].Reason, "left ring") {
		t.Errorf("no ring left on a pass in the audit log: %+v", passes)
	}
	if n := f.notes.all(); len(n) != 0 {
		t.Errorf("notified %d decisions for an A/A stream: %+v", len(n), n[0])
	}
}

// sqliteSnapshots scans a CPython 3.7 tool cache as actions/setup-python
// lays it out, with and without its _sqlite3 extension (--exec none).
func sqliteSnapshots(t *testing.T) (good, broken []byte) {
	t.Helper()
	home := testenv.RequirePython(t, "3.7")
	scanTree := func(removeSQLite bool) []byte {
		dir := t.TempDir()
		dst := filepath.Join(dir, "Python", filepath.Base(home), "x64")
		err := filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(home, p)
			to := filepath.Join(dst, rel)
			switch {
			case d.IsDir():
				return os.MkdirAll(to, 0o755)
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				return os.Symlink(target, to)
			case removeSQLite && strings.HasPrefix(d.Name(), "_sqlite3") && strings.HasSuffix(d.Name(), ".so"):
				return nil
			default:
				return os.Link(p, to) // hard links: a copy in milliseconds
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+".complete", nil, 0o644); err != nil {
			t.Fatal(err)
		}
		tree, err := source.Open(context.Background(), "dir:"+dir, source.Options{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer tree.Close()
		s, err := scan.Scan(context.Background(), tree, scan.Options{Exec: scan.ExecNone})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := snapshot.Encode(&b, s); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	return scanTree(false), scanTree(true)
}

// sqliteBreak fails the ~2% of pipelines that use sqlite3 on the new
// version.
func sqliteBreak(org string, pl int, version string, _ time.Time) string {
	if version == "v2" && pipelineShare(org, pl, 2) {
		return sqliteTraceback
	}
	return ""
}

// TestBrokenFeatureRolledBackInRing0 is the 2019 incident: the new version
// lacks _sqlite3, and the ~2% of pipelines that import sqlite3 fail. The
// rollout is rolled back while in ring 0, and the audit entry names the
// signature and the probable cause.
func TestBrokenFeatureRolledBackInRing0(t *testing.T) {
	good, broken := sqliteSnapshots(t)
	f := newFleet(t, rollout.AnalysisPolicies{}, good, broken)
	f.broken = sqliteBreak
	r := f.start()
	var got rollout.Rollout
	for i := 0; i < 60; i++ {
		if got = f.tick(); rollout.Terminal(got.State) || got.State == rollout.StateHalted {
			t.Logf("decided after %d minutes", i+1)
			break
		}
	}
	if got.State != rollout.StateRolledBack || got.Ring != 0 {
		t.Fatalf("rollout is %s in ring %d (%s), want rolled back in ring 0", got.State, got.Ring, got.Reason)
	}
	res, err := f.svc.Resolve(f.ctx, "r0-00", fleetLabel, "")
	f.must(err)
	if res.Version != "v1" {
		t.Errorf("ring 0 resolves %s after the rollback, want v1", res.Version)
	}
	entries := f.audit(r.ID, "rollout.rollback")
	if len(entries) != 1 {
		t.Fatalf("%d rollback entries, want 1", len(entries))
	}
	e := entries[0]
	if !strings.Contains(e.Reason, "_sqlite3") || !strings.Contains(e.Reason, "runtime/python@3.7/module/sqlite3") {
		t.Errorf("rollback reason does not name the signature and the cause: %s", e.Reason)
	}
	var details struct {
		Health rollout.HealthResult `json:"health"`
	}
	f.must(json.Unmarshal(e.Details, &details))
	d := details.Health.Decision
	if d == nil || d.Signature == nil {
		t.Fatalf("audit details carry no decision: %s", e.Details)
	}
	if d.Signature.Template != "ModuleNotFoundError: No module named '_sqlite3'" || len(d.Signature.Examples) == 0 ||
		!strings.Contains(d.Signature.Examples[0], "_sqlite3") {
		t.Errorf("decision's signature: %+v", d.Signature)
	}
	if d.Signature.New.Pipelines < 3 || d.Signature.New.Orgs < 3 || d.Signature.Old.Pipelines != 0 || d.Statistic < d.Threshold || d.Alpha != 0.001 {
		t.Errorf("decision's counts and statistic: %+v", d)
	}
	if len(d.ProbableCause) == 0 || d.ProbableCause[0].Change.ID != "runtime/python@3.7/module/sqlite3" {
		t.Errorf("probable cause: %+v", d.ProbableCause)
	}
	n := f.notes.all()
	if len(n) != 1 || n[0].Action != rollout.ActionRollback || n[0].Rollout.ID != r.ID || n[0].Health.Decision == nil {
		t.Errorf("notifications: %+v", n)
	}

	// The API's view of the same rollout.
	a, err := f.svc.Analysis(f.ctx, r.ID)
	f.must(err)
	if len(a.Rings) != 1 || a.Rings[0].Decision.Outcome != "fail" || len(a.Rings[0].Decision.Signatures) < 5 {
		t.Fatalf("analysis: %d rings, %+v", len(a.Rings), a.Rings)
	}
	top := a.Rings[0].Decision.Signatures[0]
	if !top.Test.Regression || a.Rings[0].Causes[top.ID][0].Change.ID != "runtime/python@3.7/module/sqlite3" {
		t.Errorf("analysis' first signature %s %q, causes %+v", top.ID, top.Template, a.Rings[0].Causes[top.ID])
	}
}

// TestDryRunDoesNotAct: the same break under action dry-run is recorded
// once and notified, and the rollout goes on as if there were no gate.
func TestDryRunDoesNotAct(t *testing.T) {
	snapOld := []byte(`{"schema":"imagegate/snapshot/v1"}`)
	f := newFleet(t, rollout.AnalysisPolicies{Default: rollout.AnalysisPolicy{Action: rollout.ActionDryRun}}, snapOld, snapOld)
	f.broken = sqliteBreak
	r := f.start()
	var got rollout.Rollout
	for i := 0; i < 70; i++ {
		got = f.tick()
		if got.State == rollout.StateHalted || got.State == rollout.StateRolledBack {
			t.Fatalf("minute %d: dry-run acted: %s %s", i, got.State, got.Reason)
		}
	}
	if got.Ring == 0 {
		t.Errorf("after 70 minutes the dry-run rollout is still in ring 0 (bake time 1h): %s", got.Reason)
	}
	// Once per ring it reached and signature, however many ticks saw it.
	entries := f.audit(r.ID, "rollout.dry-run")
	var reasons []string
	ring0 := 0
	for _, e := range entries {
		reasons = append(reasons, e.Reason)
		if !strings.HasPrefix(e.Reason, "dry-run, not acted on") || !strings.Contains(e.Reason, "_sqlite3") {
			t.Errorf("dry-run entry does not say what it would have done: %s", e.Reason)
		}
		if strings.Contains(e.Reason, "regressed in ring 0") {
			ring0++
		}
	}
	if ring0 != 1 || len(entries) > got.Ring+1 {
		t.Fatalf("dry-run entries up to ring %d: %q", got.Ring, reasons)
	}
	n := f.notes.all()
	if len(n) != len(entries) || n[0].Action != rollout.ActionDryRun {
		t.Errorf("%d notifications for %d dry-run entries: %+v", len(n), len(entries), n)
	}
}
