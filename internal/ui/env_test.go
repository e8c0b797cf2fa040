package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

// env is the serve handler (the API with the dashboard mounted) over a
// real SQLite store and Service, on an httptest server, with a clock the
// test moves.
type env struct {
	t                         *testing.T
	url                       string
	handler                   http.Handler
	st                        *sqlite.DB
	svc                       *rollout.Service
	reports                   *rollout.Reports
	clk                       *testenv.Clock
	admin, orgA, orgB, runner string
	rollout                   rollout.Rollout
}

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func snapshotJSON(t testing.TB, withSQLite bool, pkgVersion string) []byte {
	t.Helper()
	mods := []snapshot.Module{{Name: "json", Status: "ok"}}
	if withSQLite {
		mods = append(mods, snapshot.Module{Name: "sqlite3", Status: "ok"})
	}
	s := snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/img", ScannedAt: t0, Exec: "local",
		OS:       snapshot.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		Packages: []snapshot.Package{{Type: "deb", Name: "libsqlite3-0", Version: pkgVersion}},
		Runtimes: []snapshot.Runtime{{Kind: "python", Version: "3.11.2", Path: "/usr/bin/python3", Modules: mods}},
		Tools:    []snapshot.Tool{{Name: "git", Path: "/usr/bin/git"}}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const checkFail = `{"schema":"imagegate/check/v1","source":"dir:/img","verdict":"fail","summary":{"failed":1,"declared":0,"info":0,"passed":1},
"results":[{"id":"tool/git","origin":"automatic","kind":"tool","status":"pass","message":"found"},
{"id":"runtime/python@3.11/module/sqlite3","origin":"automatic","kind":"module","status":"fail","message":"import-error: No module named '_sqlite3'","evidence":["python3 -c 'import sqlite3'"]}]}`

const checkPass = `{"schema":"imagegate/check/v1","source":"dir:/img","verdict":"pass","summary":{"failed":0,"declared":0,"info":0,"passed":1},
"results":[{"id":"tool/git","origin":"automatic","kind":"tool","status":"pass","message":"found"}]}`

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "imagegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := testenv.NewClock(t0)
	tel := rollout.NewTelemetryHealth(st, rollout.AnalysisPolicies{}, nil)
	signer, err := rollout.NewStoredSigner(ctx, st, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{Clock: clk, Health: tel, Analyzer: tel, Signer: signer, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	reports, err := rollout.NewReports(svc, st, rollout.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Service: svc, Store: st, Now: clk.Now, Sessions: st, TokenCacheTTL: time.Nanosecond, Reports: reports})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e := &env{t: t, url: hs.URL, handler: srv, st: st, svc: svc, reports: reports, clk: clk}
	for _, tok := range []struct {
		dst        *string
		name, role string
	}{{&e.admin, "release-eng", rollout.RoleAdmin}, {&e.orgA, "org-a-support", "org:org-a"}, {&e.orgB, "org-b-support", "org:org-b"}, {&e.runner, "runners", rollout.RoleRunner}} {
		secret, _, err := server.CreateToken(ctx, st, "system", tok.name, tok.role, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		*tok.dst = secret
	}
	if err := svc.SetRings(ctx, "test", "", []rollout.Ring{
		{Name: "canary", Orgs: []string{"org-a"}, BakeTime: time.Hour, MinJobs: 1000},
		{Name: "everyone", Percent: 100, BakeTime: time.Hour},
	}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []rollout.Version{
		{Label: "ubuntu-22.04", Version: "v1", Snapshot: snapshotJSON(t, true, "3.40.1-2"), CheckReport: json.RawMessage(checkPass)},
		{Label: "ubuntu-22.04", Version: "v2", Snapshot: snapshotJSON(t, false, "3.40.1-3"), CheckReport: json.RawMessage(checkFail)},
		{Label: "debian-12", Version: "d1", Snapshot: snapshotJSON(t, true, "3.40.1-2"), CheckReport: json.RawMessage(checkPass)},
	} {
		if _, err := svc.PushVersion(ctx, "token:ci", v); err != nil {
			t.Fatal(err)
		}
	}
	first, err := svc.StartRollout(ctx, "token:ci", rollout.StartRequest{Label: "ubuntu-22.04", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	// v1 becomes the default: promoted through both rings.
	for range 4 {
		if r, err := svc.GetRollout(ctx, first.ID); err == nil && r.State == rollout.StateCompleted {
			break
		}
		if _, err := svc.Promote(ctx, "token:ci", first.ID, "first version"); err != nil && !strings.Contains(err.Error(), "precondition") {
			t.Fatal(err)
		}
		ctl := rollout.NewController(svc, st, rollout.ControllerOptions{})
		ctl.Tick(ctx)
	}
	r, err := svc.StartRollout(ctx, "token:ci", rollout.StartRequest{Label: "ubuntu-22.04", Version: "v2", Force: true, ForceReason: "sqlite3 dropped on purpose"})
	if err != nil {
		t.Fatal(err)
	}
	ctl := rollout.NewController(svc, st, rollout.ControllerOptions{})
	if err := ctl.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if e.rollout, err = svc.GetRollout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if e.rollout.State != rollout.StateBaking || e.rollout.Ring != 0 {
		t.Fatalf("set-up: rollout of v2 is %s in ring %d, want baking in ring 0", e.rollout.State, e.rollout.Ring)
	}
	for _, p := range []rollout.Pin{
		{Org: "org-a", Label: "debian-12", Version: "d1", Reason: "org-a waits for sqlite3", ExpiresAt: t0.Add(48 * time.Hour)},
		{Org: "org-b", Label: "ubuntu-22.04", Version: "v1", Reason: "org-b secret reason", ExpiresAt: t0.Add(30 * 24 * time.Hour)},
	} {
		if _, err := svc.SetPin(ctx, "token:ci", p); err != nil {
			t.Fatal(err)
		}
	}
	e.jobs(t)
	return e
}

// jobs reports job outcomes: org-a (ring 0) on v2, where sqlite3 fails to
// import, and 20 other orgs on v1 with the odd unrelated failure.
func (e *env) jobs(t *testing.T) {
	t.Helper()
	// The jobs ran in the rollout's window, after ring 0 started.
	e.clk.Advance(10 * time.Minute)
	now := e.clk.Now()
	var evs []rollout.JobEvent
	add := func(org, version, pipeline string, n int, failed bool, text string) {
		for i := range n {
			ev := rollout.JobEvent{JobID: fmt.Sprintf("%s-%s-%s-%d-%d", org, version, pipeline, i, len(evs)), Org: org, Label: "ubuntu-22.04", Version: version,
				Pipeline: org + "/" + pipeline, RunID: fmt.Sprintf("run-%d", len(evs)), Outcome: rollout.OutcomeSucceeded, StartedAt: now.Add(-time.Minute), DurationMs: 60000}
			if failed {
				ev.Outcome, ev.ErrorText = rollout.OutcomeFailed, text
			}
			evs = append(evs, ev)
		}
	}
	sqliteErr := sqliteTraceback
	for p := range 6 {
		add("org-a", "v2", fmt.Sprintf("ci-%d.yml", p), 3, false, "")
		add("org-a", "v2", fmt.Sprintf("ci-%d.yml", p), 2, true, sqliteErr)
	}
	for o := range 20 {
		org := fmt.Sprintf("org-x%02d", o)
		add(org, "v1", "build.yml", 8, false, "")
		if o%4 == 0 {
			add(org, "v1", "build.yml", 1, true, "error: connect ETIMEDOUT 10.0.0.1:443")
		}
	}
	if _, err := e.svc.IngestEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

// client is a browser without JavaScript: cookies, no redirects followed
// unless asked.
type client struct {
	e *env
	c *http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get returns the status, Location and body of GET path.
func (c *client) get(path string) (int, string, string) {
	c.e.t.Helper()
	resp, err := c.c.Get(c.e.url + path)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func (c *client) post(path string, form url.Values) (int, string, string) {
	c.e.t.Helper()
	resp, err := c.c.PostForm(c.e.url+path, form)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(tb testing.TB, body string) string {
	tb.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		tb.Fatalf("no CSRF field in the page:\n%s", body)
	}
	return m[1]
}

// login logs in with token and returns the status of the POST.
func (c *client) login(token string) int {
	c.e.t.Helper()
	_, _, body := c.get("/ui/login")
	status, _, _ := c.post("/ui/login", url.Values{"csrf": {csrfOf(c.e.t, body)}, "token": {token}})
	return status
}

// sqliteTraceback is the failure of v2 in org-a's jobs.
const sqliteTraceback = "Traceback (most recent call last):\n  File \"/app/db.py\", line 3, in <module>\n    import sqlite3\nModuleNotFoundError: No module named '_sqlite3'"

// laterJobs reports two more hours of ring 0: org-a on v2 and four old
// orgs on v1, so the ring's trend has three points.
func (e *env) laterJobs(t *testing.T) {
	t.Helper()
	for h, c := range []struct{ newFailed, oldFailed int }{{1, 0}, {0, 2}} {
		e.clk.Advance(time.Hour)
		now := e.clk.Now()
		var evs []rollout.JobEvent
		add := func(org, version string, n, failed int) {
			for i := range n {
				ev := rollout.JobEvent{JobID: fmt.Sprintf("later-%d-%s-%d", h, org, i), Org: org, Label: "ubuntu-22.04", Version: version,
					Pipeline: org + "/later.yml", Outcome: rollout.OutcomeSucceeded, StartedAt: now.Add(-time.Minute), DurationMs: 1000}
				if i < failed {
					ev.Outcome, ev.ErrorText = rollout.OutcomeFailed, "error: connect ETIMEDOUT 10.0.0.1:443"
				}
				evs = append(evs, ev)
			}
		}
		add("org-a", "v2", 4, c.newFailed)
		for o := range 4 {
			failed := 0
			if o < c.oldFailed {
				failed = 1
			}
			add(fmt.Sprintf("org-x%02d", o), "v1", 4, failed)
		}
		if _, err := e.svc.IngestEvents(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
}
