package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

var _ rollout.Clock = (*testenv.Clock)(nil)

// env is one control plane on a real SQLite file.
type env struct {
	t     testing.TB
	ctx   context.Context
	path  string
	db    *sqlite.DB
	svc   *rollout.Service
	ctl   *rollout.Controller
	clock *testenv.Clock
	jobs  int
}

const admin = "token:ci-admin"

func newEnv(t testing.TB, opts rollout.ServiceOptions) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "imagegate.db"), clock: testenv.NewClock(t0)}
	e.open(opts, "replica-a")
	return e
}

// open starts a Service and Controller on e.path, as a (re)started
// process would.
func (e *env) open(opts rollout.ServiceOptions, holder string) {
	e.t.Helper()
	db, err := sqlite.Open(e.ctx, e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	opts.Clock = e.clock
	opts.Health = e.bind(opts.Health, db)
	svc, err := rollout.NewService(e.ctx, db, opts)
	if err != nil {
		db.Close()
		e.t.Fatal(err)
	}
	e.db, e.svc = db, svc
	e.ctl = rollout.NewController(svc, db, rollout.ControllerOptions{Holder: holder, Clock: e.clock})
	e.t.Cleanup(func() { svc.Close(); db.Close() })
}

// bind gives the health checks that read the store this process's
// database and clock, inside AllOf too.
func (e *env) bind(h rollout.Health, db *sqlite.DB) rollout.Health {
	switch h := h.(type) {
	case rollout.FailureRateHealth:
		h.Jobs = db
		return h
	case rollout.NoticeGate:
		h.Sent, h.Clock = db, e.clock
		return h
	case rollout.AllOf:
		out := make(rollout.AllOf, len(h))
		for i, m := range h {
			out[i] = e.bind(m, db)
		}
		return out
	}
	return h
}

// crash drops the Service and Controller without any goodbye and opens new
// ones over the same database.
func (e *env) crash(opts rollout.ServiceOptions, holder string) {
	e.t.Helper()
	e.svc.Close()
	e.db.Close()
	e.open(opts, holder)
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) push(label, version, verdict string) {
	e.t.Helper()
	v := rollout.Version{Label: label, Version: version, Snapshot: []byte(`{"schema":1}`)}
	if verdict != "" {
		v.CheckReport = fmt.Appendf(nil, `{"verdict":%q,"summary":{"failed":0}}`, verdict)
	}
	_, err := e.svc.PushVersion(e.ctx, admin, v)
	e.must(err)
}

// setup registers label with v1 completed (its first rollout completes at
// once) and v2 pushed, under rings.
func (e *env) setup(label string, rings []rollout.Ring) {
	e.t.Helper()
	e.must(e.svc.SetRings(e.ctx, admin, "", rings))
	e.push(label, "v1", "pass")
	r, err := e.svc.StartRollout(e.ctx, admin, rollout.StartRequest{Label: label, Version: "v1"})
	e.must(err)
	if r.State != rollout.StateCompleted {
		e.t.Fatalf("first rollout is %s, want completed at once", r.State)
	}
	e.push(label, "v2", "pass")
}

func (e *env) start(req rollout.StartRequest) rollout.Rollout {
	e.t.Helper()
	r, err := e.svc.StartRollout(e.ctx, admin, req)
	e.must(err)
	return r
}

func (e *env) get(id string) rollout.Rollout {
	e.t.Helper()
	r, err := e.svc.GetRollout(e.ctx, id)
	e.must(err)
	return r
}

// tickTo ticks and checks where the rollout is then.
func (e *env) tickTo(id string, state rollout.State, ring int) rollout.Rollout {
	e.t.Helper()
	e.must(e.ctl.Tick(e.ctx))
	r := e.get(id)
	if r.State != state || r.Ring != ring {
		st, _ := e.svc.Status(e.ctx, r.Label)
		e.t.Fatalf("rollout %s is %s in ring %d, want %s in ring %d (%s; waiting: %s)", id, r.State, r.Ring, state, ring, r.Reason, st.Waiting)
	}
	return r
}

// jobsDone ingests n finished jobs of version in ring, failed of them
// failing, started now, from an org of that ring outside its control share
// (the server places events by their org).
func (e *env) jobsDone(label, version string, ring, n, failed int) {
	e.t.Helper()
	rings, err := e.db.GetRings(e.ctx, label)
	e.must(err)
	if rs, _, err := e.db.ListRollouts(e.ctx, label, []rollout.State{rollout.StatePending, rollout.StateBaking, rollout.StatePaused, rollout.StateHalted}, rollout.Page{Limit: 1}); err == nil && len(rs) > 0 {
		rings = rs[0].Rings
	}
	var org string
	if ring < len(rings) && len(rings[ring].Orgs) > 0 {
		org = rings[ring].Orgs[0]
	} else {
		org = orgIn(e.t, rings, ring, false)
	}
	var evs []rollout.JobEvent
	for i := range n {
		e.jobs++
		out := rollout.OutcomeSucceeded
		if i < failed {
			out = rollout.OutcomeFailed
		}
		evs = append(evs, rollout.JobEvent{JobID: fmt.Sprintf("job-%d", e.jobs), Org: org, Label: label, Version: version,
			Ring: ring, Outcome: out, StartedAt: e.clock.Now(), DurationMs: 1000})
	}
	got, err := e.svc.IngestEvents(e.ctx, evs)
	e.must(err)
	if got != n {
		e.t.Fatalf("IngestEvents stored %d of %d new events", got, n)
	}
}

func (e *env) resolve(org, label, run string) rollout.Resolution {
	e.t.Helper()
	res, err := e.svc.Resolve(e.ctx, org, label, run)
	e.must(err)
	return res
}

// expect checks what each org resolves to.
func (e *env) expect(label string, want map[string]string) {
	e.t.Helper()
	for org, v := range want {
		if res := e.resolve(org, label, ""); res.Version != v {
			e.t.Errorf("resolve %s %s = %s (%s: %s), want %s", org, label, res.Version, res.Reason, res.Detail, v)
		}
	}
}

func wantErr(t testing.TB, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want %v", err, kind)
	}
}
