package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/postgres"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

// storeKinds are the stores every hostile-input test runs against: the
// refusals happen before a store is touched, and PostgreSQL is the one
// that answered 500 for NUL and invalid UTF-8.
var storeKinds = []string{"sqlite", "postgres"}

// openStore opens an empty store of kind for t: a SQLite file, or a fresh
// PostgreSQL schema of IMAGEGATE_TEST_POSTGRES dropped at the end.
func openStore(t testing.TB, kind string) rollout.Store {
	t.Helper()
	ctx := context.Background()
	if kind == "sqlite" {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "imagegate.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	dsn := testenv.RequirePostgres(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to IMAGEGATE_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	st, err := postgres.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// hostile is a server over a store of some kind with an image, a
// completed and a pending rollout, a pin and tokens of every role.
type hostile struct {
	URL     string
	st      rollout.Store
	svc     *rollout.Service
	srv     *server.Server
	rollout string // the pending rollout's id
	tokens  map[string]string
	clock   *testenv.Clock
}

func newHostile(t testing.TB, kind string) *hostile {
	t.Helper()
	ctx := context.Background()
	st := openStore(t, kind)
	clk := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := server.BootstrapAdmin(ctx, st, adminSecret, io.Discard, clk.Now()); err != nil {
		t.Fatal(err)
	}
	reports, err := rollout.NewReports(svc, st, rollout.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Service: svc, Store: st, Now: clk.Now, Reports: reports})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	admin, _ := apiclient.New(hs.URL, adminSecret, nil)
	h := &hostile{URL: hs.URL, st: st, svc: svc, srv: srv, tokens: map[string]string{"admin": adminSecret}, clock: clk}
	if err := admin.SetRings(ctx, "", threeRings); err != nil {
		t.Fatal(err)
	}
	mustPush(t, admin, label, "v1", passReport)
	if _, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	mustPush(t, admin, label, "v2", passReport)
	r, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	h.rollout = r.ID
	for _, role := range []string{"runner", "org:org-a"} {
		resp, err := admin.CreateToken(ctx, "hostile-"+strings.ReplaceAll(role, ":", "-"), role)
		if err != nil {
			t.Fatal(err)
		}
		h.tokens[role] = resp.Token
	}
	return h
}

// do sends one request as admin and returns status and body.
func (h *hostile) do(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBadInput: what an attacker or an unlucky operator sends is refused
// at the edge with the status HTTP says and a message naming the field
// and the character, on both stores.
func TestBadInput(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			h := newHostile(t, kind)
			event := func(field, value string) string {
				e := map[string]any{"jobId": "j1", "org": "org-a", "label": label, "version": "v1", "outcome": "failed",
					"startedAt": "2026-03-02T08:00:00Z", "pipeline": "o/r/ci.yml"}
				e[field] = value
				b, _ := json.Marshal(map[string]any{"events": []any{e}})
				return string(b)
			}
			pin := func(reason string) string {
				b, _ := json.Marshal(map[string]any{"version": "v1", "reason": reason, "expiresAt": "2026-03-04T00:00:00Z"})
				return string(b)
			}
			tests := []struct {
				name         string
				method, path string
				body         string
				status       int
				want         []string // substrings of the error message
			}{
				{"label with 0xFF", "GET", "/api/v1/images/x%FF/versions", "", 400, []string{"label", "byte 0xFF"}},
				{"label NUL", "GET", "/api/v1/images/%00/versions", "", 400, []string{"label", "U+0000"}},
				{"version NUL", "GET", "/api/v1/images/" + label + "/versions/v%00", "", 400, []string{"version", "U+0000"}},
				{"audit actor NUL", "GET", "/api/v1/audit?actor=%00", "", 400, []string{"actor", "U+0000"}},
				{"audit subject 0xFF", "GET", "/api/v1/audit?subject=x%FF", "", 400, []string{"subject", "byte 0xFF"}},
				{"rollout id NUL", "GET", "/api/v1/rollouts/r%00", "", 400, []string{"rollout id", "U+0000"}},
				{"rollout action id 0xFF", "POST", "/api/v1/rollouts/r%FF/pause", "", 400, []string{"rollout id", "byte 0xFF"}},
				{"list label NUL", "GET", "/api/v1/rollouts?label=a%00", "", 400, []string{"label", "U+0000"}},
				{"pins org 0xFF", "GET", "/api/v1/pins?org=%FF", "", 400, []string{"org", "byte 0xFF"}},
				{"resolve label NUL", "GET", "/api/v1/resolve?org=org-a&label=x%00", "", 400, []string{"label", "U+0000"}},
				{"resolve run space", "GET", "/api/v1/resolve?org=org-a&label=" + label + "&run=a%20b", "", 400, []string{"run", "' '"}},
				{"event org NUL", "POST", "/api/v1/events", event("org", "a\x00b"), 400, []string{"org", "U+0000"}},
				{"event errorText NUL", "POST", "/api/v1/events", event("errorText", "Traceback\x00"), 400, []string{"errorText", "U+0000"}},
				{"event jobId 1 MB", "POST", "/api/v1/events", event("jobId", strings.Repeat("j", 1<<20)), 400, []string{"jobId", "at most 256"}},
				{"event pipeline space", "POST", "/api/v1/events", event("pipeline", "o/r/ci yml"), 400, []string{"pipeline"}},
				{"bare array unknown field", "POST", "/api/v1/events", `[{"jobId":"j","colour":"red"}]`, 400, []string{"colour"}},
				{"token name NUL", "POST", "/api/v1/tokens", `{"name":"a\u0000","role":"runner"}`, 400, []string{"token name", "U+0000"}},
				{"token name 100 KB", "POST", "/api/v1/tokens", `{"name":"` + strings.Repeat("n", 100<<10) + `","role":"runner"}`, 400, []string{"token name", "at most 128"}},
				{"role org with space", "POST", "/api/v1/tokens", `{"name":"x","role":"org:a b"}`, 400, []string{"org:a b", "' '"}},
				{"role org path", "POST", "/api/v1/tokens", `{"name":"x","role":"org:../x"}`, 400, []string{"org:../x", "'.'"}},
				{"revoke reason NUL", "POST", "/api/v1/images/" + label + "/versions/v1/revoke", `{"reason":"bad\u0000"}`, 400, []string{"reason", "U+0000"}},
				{"revoke reason 10 MB", "POST", "/api/v1/images/" + label + "/versions/v1/revoke", `{"reason":"` + strings.Repeat("r", 10<<20) + `"}`, 413, []string{"limit of"}},
				{"pin reason 1 MB", "PUT", "/api/v1/pins/org-a/" + label, pin(strings.Repeat("r", 1000_000)), 400, []string{"reason", "at most 1024"}},
				{"pin reason NUL", "PUT", "/api/v1/pins/org-a/" + label, pin("a\x00"), 400, []string{"reason", "U+0000"}},
				{"homoglyph label", "POST", "/api/v1/images/ubuntu%E2%80%9022.04/versions", `{"version":"v1"}`, 400, []string{"label", "U+2010"}},
				{"zero-width label", "POST", "/api/v1/images/ubuntu%E2%80%8B/versions", `{"version":"v1"}`, 400, []string{"label", "U+200B"}},
				{"dot label", "POST", "/api/v1/images/./versions", `{"version":"v1"}`, 0, nil},
				{"dot-dot label", "POST", "/api/v1/images/%2E%2E/versions", `{"version":"v1"}`, 0, nil},
				{"dot version", "POST", "/api/v1/images/" + label + "/versions", `{"version":".."}`, 400, []string{"version", "'.'"}},
				{"force reason NUL", "POST", "/api/v1/rollouts", `{"label":"` + label + `","version":"v2","force":true,"forceReason":"\u0000"}`, 400, []string{"forceReason", "U+0000"}},
				{"start reason NUL", "POST", "/api/v1/rollouts", `{"label":"` + label + `","version":"v2","reason":"why\u0000"}`, 400, []string{"reason", "U+0000"}},
				{"ring org bad", "PUT", "/api/v1/rings", `{"rings":[{"name":"a","orgs":["a b"],"percent":100}]}`, 400, []string{"orgs[0]", "' '"}},
				{"images after garbage", "GET", "/api/v1/images?after=garbage", "", 400, []string{"cursor"}},
				{"pins after garbage", "GET", "/api/v1/pins?after=garbage", "", 400, []string{"cursor"}},
				{"rings of never-pushed label", "PUT", "/api/v1/images/never-pushed/rings", `{"rings":[{"name":"all","percent":100}]}`, 404, []string{"push one first"}},
				{"router 404", "GET", "/api/v1/nope", "", 404, []string{"no such endpoint"}},
				{"router 405", "DELETE", "/api/v1/images", "", 405, []string{"DELETE is not served"}},
				{"query not a query", "GET", "/api/v1/images?limit=%zz", "", 400, []string{"query"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					status, body := h.do(t, tt.method, tt.path, tt.body)
					if tt.status == 0 {
						// The mux may clean the path (a redirect) or refuse
						// the label; it must never be stored.
						if status < 300 || status >= 500 {
							t.Fatalf("%d %s, want a refusal or a redirect", status, body)
						}
						return
					}
					var eb api.ErrorBody
					if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error.Code == "" {
						t.Fatalf("%d: body %.200q is not a JSON error", status, body)
					}
					if status != tt.status {
						t.Fatalf("%d %s, want %d", status, eb.Error.Message, tt.status)
					}
					for _, w := range tt.want {
						if !strings.Contains(eb.Error.Message, w) {
							t.Errorf("message %q does not name %q", eb.Error.Message, w)
						}
					}
				})
			}
			// Nothing of the above was stored: the image list is what the
			// set-up pushed.
			status, body := h.do(t, "GET", "/api/v1/images", "")
			var images api.List[rollout.Image]
			if err := json.Unmarshal([]byte(body), &images); status != 200 || err != nil || len(images.Items) != 1 || images.Items[0].Label != label {
				t.Errorf("images after the hostile requests: %d %s", status, body)
			}
		})
	}
}

// TestRouterErrorsAreJSON: the mux's own 404 and 405 under /api/v1 carry
// the JSON error body and, for 405, the Allow header.
func TestRouterErrorsAreJSON(t *testing.T) {
	h := newHostile(t, "sqlite")
	req, _ := http.NewRequest("PATCH", h.URL+"/api/v1/rollouts", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb api.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 405 || eb.Error.Code != api.CodeNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "POST") ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("PATCH /api/v1/rollouts: %d %v Allow=%q", resp.StatusCode, eb, resp.Header.Get("Allow"))
	}
}

// fuzzBodies are request bodies per route with @S@ where the fuzzed string
// goes (JSON-escaped, so it reaches the handler as that string); routes
// not listed get the raw fuzzed bytes as body.
var fuzzBodies = map[string][]string{
	"POST /api/v1/tokens":                                   {`{"name":@S@,"role":"runner"}`, `{"name":"x","role":@S@}`},
	"POST /api/v1/images/{label}/versions":                  {`{"version":@S@,"snapshot":{"schemaVersion":1}}`, `{"version":"v9","checkReport":@S@}`},
	"POST /api/v1/images/{label}/versions/{version}/revoke": {`{"reason":@S@}`},
	"PUT /api/v1/images/{label}/rings":                      {`{"rings":[{"name":@S@,"percent":100}]}`, `{"rings":[{"name":"a","orgs":[@S@],"percent":100}]}`},
	"PUT /api/v1/rings":                                     {`{"rings":[{"name":@S@,"percent":100}]}`},
	"POST /api/v1/rollouts":                                 {`{"label":@S@,"version":"v2"}`, `{"label":"` + label + `","version":@S@,"force":true,"forceReason":@S@}`, `{"label":"` + label + `","version":"v2","bakeTimes":{@S@:"1h"}}`},
	"PUT /api/v1/pins/{org}/{label}":                        {`{"version":@S@,"reason":"r","expiresAt":"2026-03-04T00:00:00Z"}`, `{"version":"v1","reason":@S@,"owner":@S@,"expiresAt":"2026-03-04T00:00:00Z"}`},
	"POST /api/v1/events": {
		`[{"jobId":@S@,"org":"org-a","label":"` + label + `","version":"v1","outcome":"failed","startedAt":"2026-03-02T08:00:00Z"}]`,
		`{"events":[{"jobId":"j","org":@S@,"label":"` + label + `","version":@S@,"outcome":"failed","startedAt":"2026-03-02T08:00:00Z","pipeline":@S@,"runId":@S@,"errorText":@S@}]}`,
	},
	"POST /api/v1/reports": {`{"label":"` + label + `","org":"org-a","text":@S@,"jobId":@S@}`, `{"label":@S@,"org":@S@,"version":@S@,"text":"x"}`},
}

// fuzzQueries are the query parameters the routes read.
var fuzzQueries = []string{"label", "org", "version", "run", "after", "limit", "actor", "action", "subject", "since", "until", "state", "ring", "signature"}

// jsonString quotes s as a JSON string keeping its bytes (invalid UTF-8
// included; the decoder replaces it) and escaping every control byte, so
// NUL reaches the handler as NUL.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// escapeAll percent-encodes every byte, so any bytes make a valid URL.
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// FuzzRoutes drives fuzzed bytes through every route — into each path
// wildcard, each query parameter and each body field or the whole body —
// against both stores, and asserts that no answer is a 5xx and every
// error under /api/v1 is a JSON error body.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{"", "x\xff", "a\x00b", "..", "ubuntu‐22.04\u200b", "org:../x",
		"garbage", label, "\xed\xa0\x80", `{"a":1}`, strings.Repeat("z", 300)} {
		f.Add(s)
	}
	envs := map[string]*hostile{}
	for _, kind := range storeKinds {
		if kind == "postgres" && os.Getenv("IMAGEGATE_TEST_POSTGRES") == "" && !testenv.CI() {
			continue
		}
		envs[kind] = newHostile(f, kind)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for kind, h := range envs {
			for _, rt := range h.srv.Routes() {
				for _, req := range fuzzRequests(h, rt, s) {
					checkNo5xx(t, kind, req)
				}
			}
		}
	})
}

// fuzzRequests builds the requests s is put into for route rt: s as each
// path wildcard, as each query parameter, in each body template, and as
// the raw body.
func fuzzRequests(h *hostile, rt server.Route, s string) []*http.Request {
	route := rt.Method + " " + rt.Path
	fill := func(except string) string {
		return strings.NewReplacer("{label}", label, "{version}", "v1", "{id}", h.rollout, "{org}", "org-a").Replace(except)
	}
	base := fill(rt.Path)
	var paths []string
	for _, w := range []string{"{label}", "{version}", "{id}", "{org}"} {
		if strings.Contains(rt.Path, w) {
			paths = append(paths, fill(strings.ReplaceAll(rt.Path, w, escapeAll(s))))
		}
	}
	var queries []string
	if rt.Method == "GET" {
		for _, k := range fuzzQueries {
			queries = append(queries, base+"?org=org-a&label="+label+"&"+k+"="+escapeAll(s))
		}
	}
	queries = append(queries, base+"?"+url.PathEscape(s))
	var out []*http.Request
	add := func(path, body string) {
		req, err := http.NewRequest(rt.Method, h.URL+path, strings.NewReader(body))
		if err != nil {
			return // not a URL at all: nothing a client could send
		}
		req.Header.Set("Authorization", "Bearer "+adminSecret)
		out = append(out, req)
	}
	bodies := fuzzBodies[route]
	defBody := ""
	if len(bodies) > 0 {
		defBody = strings.ReplaceAll(bodies[0], "@S@", `"x"`)
	}
	for _, p := range paths {
		add(p, defBody)
	}
	for _, q := range queries {
		add(q, defBody)
	}
	for _, b := range bodies {
		add(base, strings.ReplaceAll(b, "@S@", jsonString(s)))
	}
	if rt.Method != "GET" {
		add(base, s)
	}
	return out
}

func checkNo5xx(t *testing.T, kind string, req *http.Request) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", kind, req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Fatalf("%s: %s %s: %d %.300s", kind, req.Method, req.URL, resp.StatusCode, body)
	}
	if resp.StatusCode >= 400 && strings.HasPrefix(req.URL.Path, "/api/v1/") {
		var eb api.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
			t.Fatalf("%s: %s %s: %d with body %.200q, not a JSON error", kind, req.Method, req.URL, resp.StatusCode, body)
		}
	}
}

// TestEventLogExcerpt: an errorText is the tail of a runner's log, with
// its colours and progress bars; refusing one would refuse the batch, so
// escapes and carriage returns are accepted where NUL is not.
func TestEventLogExcerpt(t *testing.T) {
	h := newHostile(t, "sqlite")
	body := `{"events":[{"jobId":"ansi-1","org":"org-a","label":"` + label + `","version":"v1","outcome":"failed",` +
		`"startedAt":"2026-03-02T08:00:00Z","pipeline":"o/r/ci.yml",` +
		`"errorText":"\u001b[36;1mpython -c 'import sqlite3'\u001b[0m\r\nDownloading 100%\rModuleNotFoundError: No module named '_sqlite3'\n"}]}`
	status, resp := h.do(t, "POST", "/api/v1/events", body)
	if status != 200 || !strings.Contains(resp, `"new":1`) {
		t.Fatalf("log excerpt with ANSI colours and CR: %d %s, want it stored", status, resp)
	}
}
