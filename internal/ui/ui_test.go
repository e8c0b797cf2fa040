package ui_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
)

func TestAccess(t *testing.T) {
	e := newEnv(t)
	anon := e.client()
	if status, loc, _ := anon.get("/"); status != http.StatusFound || loc != "/ui/" {
		t.Errorf("GET / = %d to %q, want 302 to /ui/", status, loc)
	}
	if status, loc, _ := anon.get("/ui/"); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/login") {
		t.Errorf("GET /ui/ without a session = %d to %q, want 303 to the login form", status, loc)
	}
	tests := []struct {
		name, token string
		want        int
	}{
		{"unknown token", "igt_nope", http.StatusUnauthorized},
		{"runner token", e.runner, http.StatusForbidden},
		{"admin token", e.admin, http.StatusSeeOther},
		{"org token", e.orgA, http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.client().login(tc.token); got != tc.want {
				t.Errorf("login = %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("login without the form's CSRF value", func(t *testing.T) {
		c := e.client()
		if status, _, _ := c.post("/ui/login", url.Values{"token": {e.admin}}); status != http.StatusForbidden {
			t.Errorf("login POST without CSRF = %d, want 403", status)
		}
	})
	t.Run("session cookie", func(t *testing.T) {
		c := e.client()
		_, _, body := c.get("/ui/login")
		resp, err := c.c.PostForm(e.url+"/ui/login", url.Values{"csrf": {csrfOf(t, body)}, "token": {e.admin}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var found bool
		for _, ck := range resp.Cookies() {
			if ck.Name == "imagegate_session" {
				found = true
				if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui/" {
					t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/", ck)
				}
			}
		}
		if !found {
			t.Fatal("no session cookie set")
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if csp == "" || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("Content-Security-Policy %q: want one without unsafe-inline", csp)
		}
	})
}

func TestPages(t *testing.T) {
	e := newEnv(t)
	admin := e.client()
	if s := admin.login(e.admin); s != http.StatusSeeOther {
		t.Fatalf("admin login = %d", s)
	}
	id := e.rollout.ID
	pages := []struct {
		path string
		want []string
	}{
		{"/ui/", []string{"ubuntu-22.04", "Default version: <strong>v1</strong>", id, "<progress", "canary", "forced past a failed gate"}},
		{"/ui/images/ubuntu-22.04", []string{"v2", "v1", id, "Hotfix"}},
		{"/ui/rollouts/" + id, []string{"rollout.start", "Ring health", "Roll back…", "Pause…", "<svg"}},
		{"/ui/rollouts/" + id + "/confirm?action=rollback", []string{"Roll back rollout", `name="reason"`, "required"}},
		{"/ui/images/ubuntu-22.04/versions/v2", []string{"gate failed", "runtime/python@3.11/module/sqlite3", "No module named", "Changes since v1", "<table>", "sqlite3", "Debian GNU/Linux 12"}},
		{"/ui/images/ubuntu-22.04/versions/v2/snapshot.json", []string{`"imagegate/snapshot/v1"`}},
		{"/ui/signatures?label=ubuntu-22.04&version=v2", []string{"Signatures of ubuntu-22.04 v2", "No module named", "canary"}},
		{"/ui/pins", []string{"org-a waits for sqlite3", "org-b secret reason", "expires soon"}},
		{"/ui/audit?action=pin.set", []string{"pin/org-a/debian-12", "pin/org-b/ubuntu-22.04"}},
		{"/ui/images/ubuntu-22.04/hotfix", []string{"Start the hotfix"}},
	}
	for _, p := range pages {
		t.Run(p.path, func(t *testing.T) {
			status, _, body := admin.get(p.path)
			if status != http.StatusOK {
				t.Fatalf("GET %s = %d:\n%s", p.path, status, body)
			}
			for _, w := range p.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q", p.path, w)
				}
			}
		})
	}
	if _, _, body := admin.get("/ui/audit?action=pin.set"); strings.Contains(body, "rollout.start") {
		t.Error("audit filtered by action pin.set shows rollout.start")
	}
}

func TestOrgView(t *testing.T) {
	e := newEnv(t)
	org := e.client()
	if s := org.login(e.orgA); s != http.StatusSeeOther {
		t.Fatalf("org login = %d", s)
	}
	_, _, body := org.get("/ui/pins")
	if !strings.Contains(body, "org-a waits for sqlite3") || strings.Contains(body, "org-b") {
		t.Errorf("org-a's pins page must show its pin and nothing of org-b:\n%s", body)
	}
	_, _, body = org.get("/ui/")
	for _, no := range []string{e.rollout.ID, "Roll back", "Pause", "/ui/audit", "Hotfix"} {
		if strings.Contains(body, no) {
			t.Errorf("org-a's images page shows %q", no)
		}
	}
	for _, path := range []string{"/ui/rollouts/" + e.rollout.ID, "/ui/audit", "/ui/signatures", "/ui/live/images", "/ui/images/ubuntu-22.04/hotfix"} {
		if status, _, _ := org.get(path); status != http.StatusForbidden {
			t.Errorf("org GET %s = %d, want 403", path, status)
		}
	}
	csrf := csrfOf(t, body)
	if status, _, _ := org.post("/ui/pins/clear", url.Values{"csrf": {csrf}, "org": {"org-b"}, "label": {"ubuntu-22.04"}}); status != http.StatusForbidden {
		t.Errorf("org-a clearing org-b's pin = %d, want 403", status)
	}
	if status, _, _ := org.post("/ui/rollouts/"+e.rollout.ID+"/act", url.Values{"csrf": {csrf}, "action": {"rollback"}, "reason": {"x"}}); status != http.StatusForbidden {
		t.Errorf("org-a rolling back = %d, want 403", status)
	}
	if status, _, _ := org.post("/ui/pins", url.Values{"csrf": {csrf}, "label": {"ubuntu-22.04"}, "version": {"v2"}, "for": {"24h"}, "reason": {"try v2"}}); status != http.StatusSeeOther {
		t.Errorf("org-a setting its own pin = %d, want 303", status)
	}
	if _, _, body = org.get("/ui/pins"); !strings.Contains(body, "try v2") {
		t.Error("org-a's new pin is not listed")
	}
}

func TestActions(t *testing.T) {
	e := newEnv(t)
	admin := e.client()
	admin.login(e.admin)
	id := e.rollout.ID
	_, _, body := admin.get("/ui/rollouts/" + id + "/confirm?action=rollback")
	csrf := csrfOf(t, body)
	if status, _, _ := admin.post("/ui/rollouts/"+id+"/act", url.Values{"action": {"rollback"}, "reason": {"forged"}}); status != http.StatusForbidden {
		t.Errorf("POST without the CSRF token = %d, want 403", status)
	}
	if status, _, _ := admin.post("/ui/rollouts/"+id+"/act", url.Values{"csrf": {"wrong"}, "action": {"rollback"}, "reason": {"forged"}}); status != http.StatusForbidden {
		t.Errorf("POST with a wrong CSRF token = %d, want 403", status)
	}
	if status, _, _ := admin.post("/ui/rollouts/"+id+"/act", url.Values{"csrf": {csrf}, "action": {"rollback"}}); status != http.StatusBadRequest {
		t.Errorf("rollback without a reason = %d, want 400", status)
	}
	if r, _ := e.svc.GetRollout(context.Background(), id); r.State != rollout.StateBaking {
		t.Fatalf("refused POSTs changed the rollout: %s", r.State)
	}
	if status, loc, body := admin.post("/ui/rollouts/"+id+"/act", url.Values{"csrf": {csrf}, "action": {"rollback"}, "reason": {"sqlite3 users break"}}); status != http.StatusSeeOther {
		t.Fatalf("rollback = %d %s:\n%s", status, loc, body)
	}
	if r, _ := e.svc.GetRollout(context.Background(), id); r.State != rollout.StateRolledBack || r.Reason != "sqlite3 users break" {
		t.Errorf("after rollback: %s %q", r.State, r.Reason)
	}
	_, _, body = admin.get("/ui/audit?action=rollout.rollback")
	if !strings.Contains(body, "sqlite3 users break") || !strings.Contains(body, "token:release-eng") {
		t.Errorf("audit lacks the rollback by release-eng:\n%s", body)
	}
	if _, err := e.svc.PushVersion(context.Background(), "token:ci", rollout.Version{Label: "ubuntu-22.04", Version: "v3",
		Snapshot: snapshotJSON(t, true, "3.40.1-4"), CheckReport: []byte(checkPass)}); err != nil {
		t.Fatal(err)
	}
	if status, _, body := admin.post("/ui/images/ubuntu-22.04/hotfix", url.Values{"csrf": {csrf}, "version": {"v3"}, "reason": {"sqlite3 back, quickly"}}); status != http.StatusSeeOther {
		t.Errorf("hotfix = %d, want 303:\n%s", status, body)
	}
	if rs, _, _ := e.svc.ListRollouts(context.Background(), "ubuntu-22.04", nil, rollout.Page{Limit: 1}); len(rs) == 0 || rs[0].Version != "v3" || !rs[0].Expedited {
		t.Errorf("after the hotfix the newest rollout is %+v, want an expedited one of v3", rs)
	}
	_, _, body = admin.get("/ui/audit?action=rollout.start")
	if !strings.Contains(body, "sqlite3 back, quickly") {
		t.Errorf("audit of rollout.start lacks the hotfix's reason:\n%s", body)
	}
	// Logout ends the session everywhere: the old cookie opens nothing.
	jarCopy := *admin
	if status, _, _ := admin.post("/ui/logout", url.Values{"csrf": {csrf}}); status != http.StatusSeeOther {
		t.Fatalf("logout = %d", status)
	}
	if status, _, _ := jarCopy.get("/ui/"); status != http.StatusSeeOther {
		t.Errorf("GET /ui/ after logout = %d, want 303 to login", status)
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.login(e.admin)
	if status, _, _ := c.get("/ui/"); status != http.StatusOK {
		t.Fatalf("GET /ui/ = %d", status)
	}
	toks, _, err := e.st.ListTokens(context.Background(), rollout.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.Name == "release-eng" {
			if _, _, err := e.st.RevokeToken(context.Background(), tok.ID, e.clk.Now(), rollout.AuditEntry{Actor: "system", Action: "token.revoke", Subject: "token/" + tok.ID}); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.clk.Advance(time.Second)
	if status, _, _ := c.get("/ui/"); status != http.StatusSeeOther {
		t.Errorf("GET /ui/ with the token revoked = %d, want 303 to login", status)
	}
}

// TestSecureCookies: over TLS both cookies are Secure.
func TestSecureCookies(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewTLSServer(e.handler)
	defer ts.Close()
	c := ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(ts.URL + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", ts.URL+"/ui/login", strings.NewReader(url.Values{"csrf": {csrfOf(t, string(body))}, "token": {e.admin}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range resp.Cookies() {
		if !ck.Secure {
			t.Errorf("cookie %s over TLS is not Secure", ck.Name)
		}
		req.AddCookie(ck)
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session bool
	for _, ck := range resp.Cookies() {
		if ck.Name == "imagegate_session" {
			session = true
			if !ck.Secure {
				t.Error("session cookie over TLS is not Secure")
			}
		}
	}
	if !session {
		t.Fatalf("login over TLS = %d, no session cookie", resp.StatusCode)
	}
}

// TestSecureCookiesBehindProxy: a proxy terminates TLS and forwards plain
// HTTP. An https externalURL makes the cookies Secure; a client's own
// X-Forwarded-Proto does not.
func TestSecureCookiesBehindProxy(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, externalURL, forwardedProto string
		secure                            bool
	}{
		{"https external URL", "https://imagegate.example.com", "", true},
		{"https external URL, upper case", "HTTPS://imagegate.example.com/", "", true},
		{"http external URL", "http://imagegate.example.com", "", false},
		{"no external URL, forged header", "", "https", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := server.New(server.Options{Service: e.svc, Store: e.st, Now: e.clk.Now, Sessions: e.st, ExternalURL: tc.externalURL})
			if err != nil {
				t.Fatal(err)
			}
			do := func(req *http.Request) *http.Response {
				if tc.forwardedProto != "" {
					req.Header.Set("X-Forwarded-Proto", tc.forwardedProto)
				}
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				return rec.Result()
			}
			resp := do(httptest.NewRequest("GET", "/ui/login", nil))
			body, _ := io.ReadAll(resp.Body)
			req := httptest.NewRequest("POST", "/ui/login", strings.NewReader(url.Values{"csrf": {csrfOf(t, string(body))}, "token": {e.admin}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			got := map[string]bool{}
			for _, ck := range resp.Cookies() {
				got[ck.Name] = ck.Secure
				req.AddCookie(ck)
			}
			for _, ck := range do(req).Cookies() {
				if ck.MaxAge >= 0 { // not the login cookie's deletion
					got[ck.Name] = ck.Secure
				}
			}
			want := map[string]bool{"imagegate_login": tc.secure, "imagegate_session": tc.secure}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Secure per cookie (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLiveStream: the rollout page's stream sends its live block, and
// sends it again when the rollout changes.
func TestLiveStream(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.login(e.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/ui/live/rollouts/"+e.rollout.ID, nil)
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	events := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev strings.Builder
		for sc.Scan() {
			if sc.Text() == "" {
				events <- ev.String()
				ev.Reset()
				continue
			}
			ev.WriteString(sc.Text() + "\n")
		}
		close(events)
	}()
	next := func(want string) {
		t.Helper()
		for ev := range events {
			if strings.HasPrefix(ev, "event: update") {
				if !strings.Contains(ev, want) {
					t.Errorf("update lacks %q:\n%s", want, ev)
				}
				return
			}
		}
		t.Fatalf("stream ended before an update with %q", want)
	}
	next(">baking<")
	if _, err := e.svc.Pause(context.Background(), "token:test", e.rollout.ID, "looking"); err != nil {
		t.Fatal(err)
	}
	next(">paused<")
}

// TestSignatureReports: the Signatures page lists, beside a signature,
// the user reports matched to it, and not under the others.
func TestSignatureReports(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, rep := range []rollout.Report{
		{Org: "org-a", Label: "ubuntu-22.04", Version: "v2", JobID: "job-77", Text: sqliteTraceback},
		{Org: "org-a", Label: "ubuntu-22.04", Text: "the build is slow today"},
	} {
		if _, err := e.reports.Report(ctx, "token:org-a-support", rep); err != nil {
			t.Fatal(err)
		}
	}
	admin := e.client()
	admin.login(e.admin)
	status, _, body := admin.get("/ui/signatures?label=ubuntu-22.04&version=v2")
	if status != http.StatusOK {
		t.Fatalf("signatures page = %d:\n%s", status, body)
	}
	for _, want := range []string{"User reports", "1 report</strong> from org-a", "org-a on v2, job job-77"} {
		if !strings.Contains(body, want) {
			t.Errorf("signatures page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "the build is slow today") {
		t.Error("a report without the signature is shown under it")
	}
}

// TestRingTrend: the Rollout page draws each side's failure rate per hour
// of ring 0 and writes the same numbers in a table.
func TestRingTrend(t *testing.T) {
	e := newEnv(t)
	e.laterJobs(t)
	admin := e.client()
	admin.login(e.admin)
	status, _, body := admin.get("/ui/rollouts/" + e.rollout.ID)
	if status != http.StatusOK {
		t.Fatalf("rollout page = %d:\n%s", status, body)
	}
	for _, want := range []string{
		`<svg class="chart trend" role="img" aria-label="Failure rate over time in ring canary, new vs old version, per 1h"`,
		"new v2 (solid, circles)", "old v1 (dashed, squares)",
		`<path class="series new"`, `<path class="series old"`,
		"<title>Dec 1 09:00–10:00 UTC, new v2 (solid, circles): 12 of 30 jobs failed (40.0%)</title>",
		"Failure rate over time as a table",
		"<th scope=\"row\">Dec 1 09:00–10:00 UTC</th><td>12 of 30 jobs failed (40.0%)</td><td>5 of 165 jobs failed (3.0%)</td>",
		"<th scope=\"row\">Dec 1 10:00–11:00 UTC</th><td>1 of 4 jobs failed (25.0%)</td><td>0 of 16 jobs failed (0.0%)</td>",
		"<th scope=\"row\">Dec 1 11:00–12:00 UTC</th><td>0 of 4 jobs failed (0.0%)</td><td>2 of 16 jobs failed (12.5%)</td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("rollout page lacks %q", want)
		}
	}
	if n := strings.Count(body, `<circle class="marker new"`); n != 3+1 { // three points and the legend's
		t.Errorf("rollout page draws %d new-side markers, want 4:\n%s", n, body)
	}
}

// TestSignatureSparkline: each signature carries its failed jobs per hour
// over the last 48 hours, drawn and in words.
func TestSignatureSparkline(t *testing.T) {
	e := newEnv(t)
	admin := e.client()
	admin.login(e.admin)
	status, _, body := admin.get("/ui/signatures?label=ubuntu-22.04&version=v2")
	if status != http.StatusOK {
		t.Fatalf("signatures page = %d:\n%s", status, body)
	}
	for _, want := range []string{
		"<th scope=\"col\">Last 48 hours</th>",
		`<svg class="spark trend-spark" role="img" aria-label="Failed jobs with `,
		"<title>Dec 1 09:00 UTC: 12</title>",
		"12 failed jobs in 48h, peak 12 at Dec 1 09:00, last hour 12",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("signatures page lacks %q:\n%s", want, body)
		}
	}
	if n := strings.Count(body, `<rect class="bar new"`); n < 1 {
		t.Errorf("signatures page draws no sparkline bar")
	}
}

// TestResolves: an org sees what it resolves now for each image, with
// why, and nothing of another org's; an admin asks for any org.
func TestResolves(t *testing.T) {
	e := newEnv(t)
	orgA, admin := e.client(), e.client()
	orgA.login(e.orgA)
	admin.login(e.admin)
	for _, tc := range []struct {
		name   string
		c      *client
		path   string
		status int
		want   []string
		not    []string
	}{
		{"org-a", orgA, "/ui/", http.StatusOK,
			[]string{"what org-a resolves now", "<td class=\"resolve\"><strong>v2</strong></td><td>ring 0: the new version is rolling out to it",
				"<td class=\"resolve\"><strong>d1</strong> <span class=\"tag\">pinned</span></td><td>pinned<br><span class=\"muted\">pinned by", "org-a waits for sqlite3"},
			[]string{"org-b", e.rollout.ID}},
		{"org-a asks for org-b's", orgA, "/ui/?org=org-b", http.StatusForbidden, nil, []string{"org-b secret reason", "<td class=\"resolve\">"}},
		{"admin without an org", admin, "/ui/", http.StatusOK, []string{`<input id="org" name="org" value=""`}, []string{"resolves now (images on this page)"}},
		{"admin for org-b", admin, "/ui/?org=org-b", http.StatusOK,
			[]string{"What org-b resolves now", "<th scope=\"row\">ubuntu-22.04</th><td><strong>v1</strong> <span class=\"tag\">pinned</span></td><td>pinned", "org-b secret reason",
				"<th scope=\"row\">debian-12</th><td>—</td><td>nothing to serve"},
			nil},
		{"admin for org-a", admin, "/ui/?org=org-a", http.StatusOK,
			[]string{"<th scope=\"row\">ubuntu-22.04</th><td><strong>v2</strong></td><td>ring 0: the new version is rolling out to it<br><span class=\"muted\">ring 0 (canary) of rollout " + e.rollout.ID},
			[]string{"org-b secret reason"}},
		{"admin for an org in ring 1", admin, "/ui/?org=org-x05", http.StatusOK,
			[]string{"<th scope=\"row\">ubuntu-22.04</th><td><strong>v1</strong></td><td>default: a rollout has not reached ring 1 yet"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := tc.c.get(tc.path)
			if status != tc.status {
				t.Fatalf("GET %s = %d, want %d:\n%s", tc.path, status, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q:\n%s", tc.path, w, body)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(body, w) {
					t.Errorf("GET %s shows %q", tc.path, w)
				}
			}
		})
	}
}
