package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/signature"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

const sqliteTraceback = `Run python -m pytest
Traceback (most recent call last):
  File "/home/runner/work/shop/shop/tests/test_db.py", line 3, in <module>
    import sqlite3
  File "/opt/hostedtoolcache/Python/3.7.3/x64/lib/python3.7/sqlite3/__init__.py", line 23, in <module>
    from sqlite3.dbapi2 import *
  File "/opt/hostedtoolcache/Python/3.7.3/x64/lib/python3.7/sqlite3/dbapi2.py", line 27, in <module>
    from _sqlite3 import *
ModuleNotFoundError: No module named '_sqlite3'
Error: Process completed with exit code 1.`

// minerSigner is the signature miner as the Service's Signer: job events
// teach it (Sign), reports only look (MatchReport, from the Miner).
type minerSigner struct{ *signature.Miner }

func (s minerSigner) Sign(text string) (string, string) {
	m := s.Add(signature.Extract(text))
	return m.ID, m.Template
}

var _ rollout.ReportMatcher = minerSigner{}

// hook is a webhook receiver that records the alerts POSTed to it.
type hook struct {
	mu     sync.Mutex
	alerts []map[string]any
	got    chan struct{}
}

func newHook(t *testing.T) (*hook, string) {
	h := &hook{got: make(chan struct{}, 16)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		h.mu.Lock()
		h.alerts = append(h.alerts, body)
		h.mu.Unlock()
		h.got <- struct{}{}
	}))
	t.Cleanup(hs.Close)
	return h, hs.URL + "/hook"
}

func (h *hook) received() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.alerts...)
}

// reportEnv is a server over HTTP with the real miner, the alert outbox
// with the real Sender delivering to a webhook receiver, on a SQLite
// store and a hand-moved clock.
type reportEnv struct {
	*env
	hook    *hook
	rollout rollout.Rollout
	canary  []string // ring 0's orgs
	dbPath  string   // the SQLite file
}

var reportRings = []rollout.Ring{
	{Name: "canary", Orgs: []string{"org-a", "org-b", "org-c", "org-d"}, BakeTime: 72 * time.Hour},
	{Name: "everyone", Percent: 100},
}

func newReportEnv(t *testing.T, policy rollout.ReportPolicy) *reportEnv {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "imagegate.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{Clock: clk, Signer: minerSigner{signature.NewMiner(signature.Options{})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	h, hookURL := newHook(t)
	outbox, err := alert.NewOutbox(st, []alert.Target{{URL: hookURL, Format: alert.FormatJSON}}, clk)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := alert.NewSender(st, alert.SenderOptions{Holder: "test", BaseURL: "https://imagegate.example.com", Clock: clk, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sender.Run(sctx) }()
	t.Cleanup(func() { stop(); <-done })
	reports, err := rollout.NewReports(svc, st, rollout.ReportOptions{Policy: policy, Alerter: outbox})
	if err != nil {
		t.Fatal(err)
	}
	ctl := rollout.NewController(svc, st, rollout.ControllerOptions{Holder: "test", Clock: clk})
	if err := server.BootstrapAdmin(ctx, st, adminSecret, io.Discard, clk.Now()); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Service: svc, Store: st, Controller: ctl, Now: clk.Now, Reports: reports})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e := &env{URL: hs.URL, clock: clk, st: st, svc: svc, ctl: ctl, srv: srv, tokens: map[string]string{"admin": adminSecret}}
	e.admin = e.client(t, adminSecret)
	e.runner = e.client(t, e.token(t, rollout.RoleRunner))
	re := &reportEnv{env: e, hook: h, canary: reportRings[0].Orgs, dbPath: dbPath}

	// v1 is the fleet's version; v2 rolls out and bakes in the canary
	// ring, where its jobs fail with the traceback while v1's fail with
	// an unrelated network error.
	if err := e.admin.SetRings(ctx, "", reportRings); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "v1", passReport)
	if _, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "v2", passReport)
	if re.rollout, err = e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	e.tick(t, time.Minute)
	if r, _ := e.admin.Rollout(ctx, re.rollout.ID); r.State != rollout.StateBaking || r.Ring != 0 {
		t.Fatalf("rollout after a tick: %s in ring %d, want baking in ring 0", r.State, r.Ring)
	}
	e.clock.Advance(time.Minute)
	var events []rollout.JobEvent
	for i, org := range re.canary {
		events = append(events, rollout.JobEvent{JobID: fmt.Sprint("new-", i), Org: org, Label: label, Version: "v2",
			Pipeline: org + "/shop/.github/workflows/ci.yml", Outcome: rollout.OutcomeFailed, StartedAt: e.clock.Now(),
			DurationMs: 1000, ErrorText: sqliteTraceback})
	}
	for i := range 4 {
		events = append(events, rollout.JobEvent{JobID: fmt.Sprint("old-", i), Org: fmt.Sprint("org-x", i), Label: label, Version: "v1",
			Pipeline: fmt.Sprintf("org-x%d/api/ci.yml", i), Outcome: rollout.OutcomeFailed, StartedAt: e.clock.Now(), DurationMs: 1000,
			ErrorText: "fatal: unable to access 'https://github.com/acme/api.git/': The requested URL returned error: 502"})
	}
	if _, err := e.runner.PostEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	return re
}

// report sends text as org (its own token) and returns the result.
func (re *reportEnv) report(t *testing.T, org, text string) rollout.ReportResult {
	t.Helper()
	res, err := re.org(t, org).Report(context.Background(), api.ReportRequest{Label: label, Text: text, JobID: "job-of-" + org})
	if err != nil {
		t.Fatalf("report as %s: %v", org, err)
	}
	return res
}

func (re *reportEnv) state(t *testing.T) rollout.Rollout {
	t.Helper()
	r, err := re.admin.Rollout(context.Background(), re.rollout.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReportEscalation is the 2019 story told by customers: three
// organisations report the same traceback within a day; the rollout
// whose version carries that signature in its job events is halted and an
// alert reaches the webhook, once: a fourth report neither alerts nor
// halts again (not even after an admin resumed the rollout).
func TestReportEscalation(t *testing.T) {
	ctx := context.Background()
	re := newReportEnv(t, rollout.ReportPolicy{})

	first := re.report(t, "org-a", "ModuleNotFoundError: No module named '_sqlite3'")
	if !first.Report.Known || first.Report.Signature == "" || first.Orgs != 1 || first.Escalation != nil {
		t.Fatalf("first report: %+v, want a known signature, 1 org, no escalation", first)
	}
	re.clock.Advance(5 * time.Hour)
	// The same org again, and its traceback pasted whole by another:
	// one signature, two orgs.
	if res := re.report(t, "org-a", sqliteTraceback); res.Orgs != 1 || res.Report.Signature != first.Report.Signature {
		t.Fatalf("repeat of org-a: %+v, want the same signature and still 1 org", res)
	}
	re.clock.Advance(5 * time.Hour)
	if res := re.report(t, "org-b", sqliteTraceback); res.Orgs != 2 || res.Escalation != nil || res.Report.Signature != first.Report.Signature {
		t.Fatalf("org-b's report: %+v, want 2 orgs and no escalation", res)
	}
	if st := re.state(t).State; st != rollout.StateBaking {
		t.Fatalf("after two orgs: rollout %s, want baking", st)
	}
	re.clock.Advance(12 * time.Hour) // 22h after the first report
	third := re.report(t, "org-c", "after the image update our tests fail:\n"+sqliteTraceback)
	want := &rollout.Escalation{Key: rollout.EscalationKey(label, first.Report.Signature, re.rollout.ID), Label: label,
		Signature: first.Report.Signature, Template: first.Report.Template, RolloutID: re.rollout.ID, Version: "v2",
		Orgs: 3, Action: rollout.EscalateHalt, CreatedAt: re.clock.Now()}
	if diff := cmp.Diff(want, third.Escalation); diff != "" {
		t.Fatalf("third org's escalation (-want +got):\n%s", diff)
	}
	r := re.state(t)
	if r.State != rollout.StateHalted || !strings.Contains(r.Reason, "3 organisations reported signature "+first.Report.Signature) ||
		!strings.Contains(r.Reason, "_sqlite3") {
		t.Fatalf("rollout after three orgs: %s %q, want halted naming the signature and 3 organisations", r.State, r.Reason)
	}
	audit, err := re.admin.Audit(ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + r.ID}, rollout.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit.Items {
		actions = append(actions, a.Actor+" "+a.Action)
	}
	if diff := cmp.Diff([]string{"system:reports report.escalate", "system:reports rollout.halt"}, actions[:2]); diff != "" {
		t.Errorf("newest audit entries of the rollout (-want +got):\n%s", diff)
	}

	select {
	case <-re.hook.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no alert reached the webhook within 10s")
	}
	got := re.hook.received()[0]
	sig, _ := got["signature"].(map[string]any)
	if got["kind"] != "escalation" || got["label"] != label || got["version"] != "v2" || got["rolloutId"] != r.ID ||
		sig["id"] != first.Report.Signature || !strings.Contains(fmt.Sprint(sig["template"]), "_sqlite3") ||
		got["link"] != "https://imagegate.example.com"+rollout.AnalysisPath(r.ID) ||
		!strings.Contains(fmt.Sprint(got["summary"]), "is halted") {
		t.Errorf("alert: %v", got)
	}

	// An admin decides to go on; a fourth org's report changes nothing.
	if _, err := re.admin.Act(ctx, r.ID, "resume", "checked: a test bug"); err != nil {
		t.Fatal(err)
	}
	re.clock.Advance(time.Hour)
	fourth := re.report(t, "org-d", sqliteTraceback)
	if fourth.Orgs != 4 || fourth.Escalation == nil || fourth.Escalation.Key != want.Key || fourth.Escalation.Orgs != 3 {
		t.Errorf("fourth report: %+v, want 4 orgs and the existing escalation", fourth)
	}
	if st := re.state(t).State; st != rollout.StateBaking {
		t.Errorf("after the fourth report: rollout %s, want still baking (escalated once)", st)
	}
	items, _, err := re.st.ListOutbox(ctx, rollout.OutboxFilter{}, rollout.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Errorf("%d outbox items, want the one escalation alert", len(items))
	}
	time.Sleep(50 * time.Millisecond) // ten sender passes
	if n := len(re.hook.received()); n != 1 {
		t.Errorf("webhook received %d alerts, want 1", n)
	}
	list, err := re.admin.Reports(ctx, label, rollout.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 5 || list.Items[0].Org != "org-d" {
		t.Errorf("admin's report list: %d reports, newest from %q; want 5, newest from org-d", len(list.Items), list.Items[0].Org)
	}
}

// TestReportNoEscalation: two organisations (one of them three times), or
// three spread over more than the window, do not escalate.
func TestReportNoEscalation(t *testing.T) {
	ctx := context.Background()
	re := newReportEnv(t, rollout.ReportPolicy{})
	for i, org := range []string{"org-a", "org-b", "org-a", "org-a"} {
		if res := re.report(t, org, sqliteTraceback); res.Escalation != nil || res.Orgs > 2 {
			t.Fatalf("report %d from %s: %+v, want no escalation", i, org, res)
		}
	}
	re.clock.Advance(25 * time.Hour)
	// org-a and org-b reported more than a day ago: org-c is alone.
	if res := re.report(t, "org-c", sqliteTraceback); res.Orgs != 1 || res.Escalation != nil {
		t.Fatalf("org-c a day later: %+v, want 1 org in the window, no escalation", res)
	}
	if st := re.state(t).State; st != rollout.StateBaking {
		t.Errorf("rollout %s, want baking", st)
	}
	items, _, err := re.st.ListOutbox(ctx, rollout.OutboxFilter{}, rollout.Page{})
	if err != nil || len(items) != 0 {
		t.Errorf("outbox: %d items (%v), want none", len(items), err)
	}
}

// TestReportEscalationAlertOnly: with action alert the rollout keeps
// baking; a signature the old version has too is not the new version's
// doing and halts nothing either.
func TestReportEscalationAlertOnly(t *testing.T) {
	re := newReportEnv(t, rollout.ReportPolicy{Action: rollout.EscalateAlert})
	var res rollout.ReportResult
	for _, org := range re.canary[:3] {
		res = re.report(t, org, sqliteTraceback)
	}
	if res.Escalation == nil || res.Escalation.Action != rollout.EscalateAlert || res.Escalation.RolloutID != re.rollout.ID {
		t.Fatalf("escalation %+v, want action alert for the rollout", res.Escalation)
	}
	if st := re.state(t).State; st != rollout.StateBaking {
		t.Errorf("rollout %s, want baking under an alert-only policy", st)
	}
	<-re.hook.got
	if got := re.hook.received()[0]; !strings.Contains(fmt.Sprint(got["summary"]), "not halted") {
		t.Errorf("alert summary %q, want it to say the rollout was not halted", got["summary"])
	}

	halting := newReportEnv(t, rollout.ReportPolicy{})
	const network = "fatal: unable to access 'https://github.com/acme/api.git/': The requested URL returned error: 502"
	for _, org := range halting.canary[:3] {
		res = halting.report(t, org, network)
	}
	if res.Escalation == nil || res.Escalation.RolloutID != "" || res.Escalation.Action != rollout.EscalateAlert {
		t.Fatalf("escalation of the old version's signature: %+v, want an alert naming no rollout", res.Escalation)
	}
	if st := halting.state(t).State; st != rollout.StateBaking {
		t.Errorf("rollout %s after reports of a signature both versions have, want baking", st)
	}
}

// TestReportAuthorization: an org reports for itself only, an admin for
// any org it names, a runner not at all.
func TestReportAuthorization(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	mustPush(t, e.admin, label, "v1", passReport)
	text := "ModuleNotFoundError: No module named '_sqlite3'"
	tests := []struct {
		name    string
		c       *apiclient.Client
		org     string
		status  int
		wantOrg string
	}{
		{"org for itself, implicitly", e.org(t, "org-a"), "", 201, "org-a"},
		{"org for itself, named", e.org(t, "org-a"), "org-a", 201, "org-a"},
		{"org for another org", e.org(t, "org-a"), "org-b", 403, ""},
		{"runner", e.runner, "org-a", 403, ""},
		{"runner without org", e.runner, "", 403, ""},
		{"admin on behalf of an org", e.admin, "org-b", 201, "org-b"},
		{"admin without org", e.admin, "", 400, ""},
		{"no token", e.client(t, ""), "org-a", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.c.Report(ctx, api.ReportRequest{Label: label, Text: text, Org: tt.org})
			if tt.status == 201 {
				if err != nil || res.Report.Org != tt.wantOrg {
					t.Fatalf("report: %+v, %v; want stored for %s", res.Report, err, tt.wantOrg)
				}
				return
			}
			var apiErr *apiclient.Error
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status {
				t.Fatalf("report: %v, want status %d", err, tt.status)
			}
		})
	}
	list, err := e.admin.Reports(ctx, "", rollout.Page{})
	if err != nil || len(list.Items) != 3 {
		t.Fatalf("reports stored: %d (%v), want the 3 allowed", len(list.Items), err)
	}
	if list.Items[0].Actor != adminActor || list.Items[0].Org != "org-b" {
		t.Errorf("newest report %+v, want org-b's by the admin", list.Items[0])
	}
	var apiErr *apiclient.Error
	if _, err := e.org(t, "org-a").Reports(ctx, "", rollout.Page{}); !errors.As(err, &apiErr) || apiErr.Status != 403 {
		t.Errorf("an org listing reports: %v, want 403", err)
	}
}

// TestReportValidation: every bad body is a 400 (an unknown image a 404)
// naming what is wrong, and nothing is stored.
func TestReportValidation(t *testing.T) {
	e := newEnv(t)
	mustPush(t, e.admin, label, "v1", passReport)
	long := strings.Repeat("x", rollout.MaxReportField+1)
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"not JSON", `{"label":`, 400, "report body"},
		{"unknown field", `{"label":"` + label + `","text":"x","colour":"red"}`, 400, "unknown field"},
		{"two values", `{"label":"` + label + `","text":"x"} {}`, 400, "more than one JSON value"},
		{"no label", `{"text":"x"}`, 400, "org and label are required"},
		{"empty text", `{"label":"` + label + `","text":"  \n"}`, 400, "the text is empty"},
		{"NUL in text", `{"label":"` + label + `","text":"a\u0000b"}`, 400, "without NUL"},
		{"text too long", `{"label":"` + label + `","text":"` + strings.Repeat("y", rollout.MaxReportText+1) + `"}`, 400, "at most 16384 are accepted"},
		{"body too large", `{"label":"` + label + `","text":"` + strings.Repeat(`\u0041`, server.MaxReportBody/6+1) + `"}`, 413, "limit of"},
		{"job id too long", `{"label":"` + label + `","text":"x","jobId":"` + long + `"}`, 400, "jobId"},
		{"version with a newline", `{"label":"` + label + `","text":"x","version":"v1\n"}`, 400, "version"},
		{"unregistered version", `{"label":"` + label + `","text":"x","version":"v9"}`, 400, `version "v9" is not registered`},
		{"unknown image", `{"label":"nope","text":"x"}`, 404, "not registered"},
	}
	org := e.token(t, "org:org-a")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.URL+"/api/v1/reports", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+org)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb api.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || !strings.Contains(eb.Error.Message, tt.want) {
				t.Errorf("%d %q, want %d containing %q", resp.StatusCode, eb.Error.Message, tt.status, tt.want)
			}
		})
	}
	list, err := e.admin.Reports(context.Background(), "", rollout.Page{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("refused reports were stored: %d (%v)", len(list.Items), err)
	}
}

// postReport POSTs body to /api/v1/reports with token and the given
// Idempotency-Key headers (none, one, or several), and decodes the answer
// into a ReportResult or an error body.
func postReport(t *testing.T, url, token string, keys []string, body string) (*http.Response, rollout.ReportResult, api.ErrorBody) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/v1/reports", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	for _, k := range keys {
		req.Header.Add("Idempotency-Key", k)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var res rollout.ReportResult
	var eb api.ErrorBody
	if resp.StatusCode < 300 {
		err = json.Unmarshal(b, &res)
	} else {
		err = json.Unmarshal(b, &eb)
	}
	if err != nil {
		t.Fatalf("answer %d %q: %v", resp.StatusCode, b, err)
	}
	return resp, res, eb
}

// TestReportIdempotencyKey: a report retried under its Idempotency-Key is
// answered 200 with the stored report and counts, escalates, halts and
// alerts once; the key with another report is 422; the key is the org's
// own, so another org's same key is another report.
func TestReportIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	re := newReportEnv(t, rollout.ReportPolicy{})
	body := func(text string) string {
		b, _ := json.Marshal(api.ReportRequest{Label: label, Text: text, JobID: "job-1"})
		return string(b)
	}
	tok := func(org string) string { return re.token(t, rollout.RoleOrgPrefix+org) }

	resp, first, _ := postReport(t, re.URL, tok("org-a"), []string{"k-1"}, body(sqliteTraceback))
	if resp.StatusCode != http.StatusCreated || first.Replayed || resp.Header.Get("Idempotent-Replayed") != "" || first.Orgs != 1 {
		t.Fatalf("first report: %d %+v, want 201, 1 org, not replayed", resp.StatusCode, first)
	}
	// A timeout and three retries, one of them an hour later; the
	// same JSON spelt another way is the same report.
	re.clock.Advance(time.Hour)
	text, _ := json.Marshal(sqliteTraceback)
	for i, b := range []string{body(sqliteTraceback), body(sqliteTraceback), `{"jobId":"job-1", "text":` + string(text) + `, "label":"` + label + `"}`} {
		resp, got, eb := postReport(t, re.URL, tok("org-a"), []string{"k-1"}, b)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Idempotent-Replayed") != "true" || !got.Replayed {
			t.Fatalf("retry %d: %d %+v %q, want 200 with Idempotent-Replayed", i, resp.StatusCode, got, eb.Error.Message)
		}
		want := first
		want.Replayed = true
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("retry %d (-want +got):\n%s", i, diff)
		}
	}
	resp, _, eb := postReport(t, re.URL, tok("org-a"), []string{"k-1"}, body("ModuleNotFoundError: No module named 'numpy'"))
	if resp.StatusCode != http.StatusUnprocessableEntity || eb.Error.Code != api.CodeKeyReused ||
		!strings.Contains(eb.Error.Message, `Idempotency-Key "k-1" came with a different report`) || strings.Contains(eb.Error.Message, "\n") {
		t.Errorf("another report under k-1: %d %+v, want 422 idempotency_key_reused on one line", resp.StatusCode, eb.Error)
	}

	// org-b's k-1 is its own; its retries do not make org-b two orgs or
	// two reports either.
	var b rollout.ReportResult
	for i := range 3 {
		resp, got, _ := postReport(t, re.URL, tok("org-b"), []string{"k-1"}, body(sqliteTraceback))
		if want := map[bool]int{true: 201, false: 200}[i == 0]; resp.StatusCode != want || got.Orgs != 2 || got.Escalation != nil {
			t.Fatalf("org-b's attempt %d: %d %+v, want %d, 2 orgs, no escalation", i, resp.StatusCode, got, want)
		}
		if i == 0 {
			b = got
		} else if got.Report.ID != b.Report.ID {
			t.Fatalf("org-b's retry %d: report %d, want %d", i, got.Report.ID, b.Report.ID)
		}
	}
	if b.Report.ID == first.Report.ID {
		t.Fatalf("org-b's report under org-a's key name is org-a's report %d", b.Report.ID)
	}
	if st := re.state(t).State; st != rollout.StateBaking {
		t.Fatalf("after two orgs and their retries: rollout %s, want baking", st)
	}

	// The third org escalates; its retries answer the same escalation
	// and halt, alert and audit nothing more.
	resp, c, _ := postReport(t, re.URL, tok("org-c"), []string{"c-report-1"}, body(sqliteTraceback))
	if resp.StatusCode != http.StatusCreated || c.Orgs != 3 || c.Escalation == nil || c.Escalation.Action != rollout.EscalateHalt {
		t.Fatalf("org-c's report: %d %+v, want 201 and a halt", resp.StatusCode, c)
	}
	if _, err := re.admin.Act(ctx, re.rollout.ID, "resume", "checked: a test bug"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		resp, got, _ := postReport(t, re.URL, tok("org-c"), []string{"c-report-1"}, body(sqliteTraceback))
		c.Replayed = true
		if diff := cmp.Diff(c, got); resp.StatusCode != http.StatusOK || diff != "" {
			t.Fatalf("org-c's retry %d: %d (-want +got):\n%s", i, resp.StatusCode, diff)
		}
	}
	if st := re.state(t).State; st != rollout.StateBaking {
		t.Errorf("after org-c's retries: rollout %s, want still baking (halted once, resumed)", st)
	}
	re.escalatedOnce(t)
	list, err := re.admin.Reports(ctx, label, rollout.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, r := range list.Items {
		ids = append(ids, r.ID)
	}
	if diff := cmp.Diff([]int64{c.Report.ID, b.Report.ID, first.Report.ID}, ids); diff != "" {
		t.Errorf("stored reports (-want +got):\n%s", diff)
	}
}

// TestReportBadIdempotencyKey: a key the server cannot keep is a 400
// naming the header, and nothing is stored.
func TestReportBadIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	mustPush(t, e.admin, label, "v1", passReport)
	body := `{"label":"` + label + `","text":"boom"}`
	tests := []struct {
		name string
		keys []string
		want string
	}{
		{"space", []string{"a b"}, `Idempotency-Key "a b": character ' ' (U+0020) at offset 1 is not allowed`},
		{"too long", []string{strings.Repeat("k", rollout.MaxKey+1)}, "at most 256 are accepted"},
		{"not ASCII", []string{"schlüssel"}, "Idempotency-Key"},
		{"empty", []string{""}, "Idempotency-Key header is empty"},
		{"twice", []string{"k-1", "k-2"}, "Idempotency-Key header given 2 times"},
	}
	org := e.token(t, "org:org-a")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _, eb := postReport(t, e.URL, org, tt.keys, body)
			if resp.StatusCode != http.StatusBadRequest || eb.Error.Code != api.CodeInvalid || !strings.Contains(eb.Error.Message, tt.want) {
				t.Errorf("%d %+v, want 400 invalid containing %q", resp.StatusCode, eb.Error, tt.want)
			}
		})
	}
	list, err := e.admin.Reports(context.Background(), "", rollout.Page{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("reports with bad keys were stored: %d (%v)", len(list.Items), err)
	}
}

// TestReportLostAnswer is the bug: the server stores a report and its
// answer is lost (a timeout, a dropped connection). The client sends it
// again under the same key and is answered with the stored report; one
// report is stored.
func TestReportLostAnswer(t *testing.T) {
	e := newEnv(t)
	mustPush(t, e.admin, label, "v1", passReport)
	var mu sync.Mutex
	lost := 0
	lossy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		drop := r.Method == "POST" && lost == 0
		if drop {
			lost++
		}
		mu.Unlock()
		if !drop {
			e.srv.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, r)
		if rec.Code != http.StatusCreated {
			t.Errorf("the first attempt: %d %s, want it stored (201)", rec.Code, rec.Body)
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	defer lossy.Close()
	c, err := apiclient.New(lossy.URL, e.token(t, "org:org-a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Report(context.Background(), api.ReportRequest{Label: label, Text: "ModuleNotFoundError: No module named '_sqlite3'"})
	if err != nil || !res.Replayed || res.Report.ID == 0 {
		t.Fatalf("report whose first answer was lost: %+v, %v; want the stored report, replayed", res, err)
	}
	list, err := e.admin.Reports(context.Background(), "", rollout.Page{})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != res.Report.ID {
		t.Errorf("stored reports: %+v (%v), want only report %d", list.Items, err, res.Report.ID)
	}
}

// TestReportRetryFinishesEscalation: the third org's report is stored but
// its escalation fails (the database refuses the escalation record); the
// client's retry under the same key stores nothing, finishes the
// escalation and alerts, halts and audits once, so nothing the first
// attempt was told is lost.
func TestReportRetryFinishesEscalation(t *testing.T) {
	ctx := context.Background()
	re := newReportEnv(t, rollout.ReportPolicy{})
	re.report(t, "org-a", sqliteTraceback)
	re.report(t, "org-b", sqliteTraceback)
	// The server writes in the background (the checkpointer): wait for
	// its lock as the store does instead of failing on SQLITE_BUSY.
	raw, err := sql.Open("sqlite", "file:"+re.dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER refuse_escalation BEFORE INSERT ON escalations BEGIN SELECT RAISE(ABORT, 'escalations refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(api.ReportRequest{Label: label, Text: sqliteTraceback})
	tok := re.token(t, rollout.RoleOrgPrefix+"org-c")
	resp, _, eb := postReport(t, re.URL, tok, []string{"c-1"}, string(body))
	if resp.StatusCode < 500 {
		t.Fatalf("report whose escalation failed: %d %+v, want a server failure", resp.StatusCode, eb.Error)
	}
	if _, err := raw.Exec(`DROP TRIGGER refuse_escalation`); err != nil {
		t.Fatal(err)
	}
	resp, res, eb := postReport(t, re.URL, tok, []string{"c-1"}, string(body))
	if resp.StatusCode != http.StatusOK || !res.Replayed || res.Orgs != 3 || res.Escalation == nil || res.Escalation.RolloutID != re.rollout.ID {
		t.Fatalf("retry: %d %+v %q, want 200, replayed, 3 orgs and the escalation of the rollout", resp.StatusCode, res, eb.Error.Message)
	}
	if st := re.state(t).State; st != rollout.StateHalted {
		t.Errorf("rollout %s, want halted", st)
	}
	re.escalatedOnce(t)
	list, err := re.admin.Reports(ctx, label, rollout.Page{})
	if err != nil || len(list.Items) != 3 || list.Items[0].ID != res.Report.ID {
		t.Errorf("stored reports: %d (%v), want 3, the newest the retried one", len(list.Items), err)
	}
}

// escalatedOnce checks that the reports escalated exactly once: one
// escalation and one halt audited by system:reports, one alert queued.
func (re *reportEnv) escalatedOnce(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	audit, err := re.admin.Audit(ctx, rollout.AuditFilter{Actor: rollout.ReportsActor}, rollout.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit.Items {
		actions = append(actions, a.Action)
	}
	if diff := cmp.Diff([]string{"report.escalate", "rollout.halt"}, actions); diff != "" {
		t.Errorf("audit entries of system:reports (-want +got):\n%s", diff)
	}
	items, _, err := re.st.ListOutbox(ctx, rollout.OutboxFilter{}, rollout.Page{})
	if err != nil || len(items) != 1 {
		t.Errorf("outbox: %d items (%v), want the one escalation alert", len(items), err)
	}
}
