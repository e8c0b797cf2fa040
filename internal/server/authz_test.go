package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
)

// Callers of the authorization matrix. "org-own" holds org-a's token and
// acts for org-a; "org-other" holds org-b's token and also acts for org-a.
var callers = []string{"anonymous", "bogus", "admin", "runner", "org-own", "org-other"}

// allowed is the role × endpoint matrix: who may call each route. Every
// registered route must appear here (the test fails otherwise).
var allowed = map[string][]string{
	"GET /healthz":             {"anonymous", "bogus", "admin", "runner", "org-own", "org-other"},
	"GET /readyz":              {"anonymous", "bogus", "admin", "runner", "org-own", "org-other"},
	"GET /metrics":             {"anonymous", "bogus", "admin", "runner", "org-own", "org-other"},
	"GET /api/v1/openapi.json": {"anonymous", "bogus", "admin", "runner", "org-own", "org-other"},

	"POST /api/v1/tokens":             {"admin"},
	"GET /api/v1/tokens":              {"admin"},
	"DELETE /api/v1/tokens/{id}":      {"admin"},
	"POST /api/v1/tokens/{id}/rotate": {"admin"},

	"GET /api/v1/images":                                    {"admin", "org-own", "org-other"},
	"GET /api/v1/images/{label}/versions":                   {"admin", "org-own", "org-other"},
	"GET /api/v1/images/{label}/versions/{version}":         {"admin", "org-own", "org-other"},
	"POST /api/v1/images/{label}/versions":                  {"admin"},
	"POST /api/v1/images/{label}/versions/{version}/revoke": {"admin"},
	"GET /api/v1/images/{label}/rings":                      {"admin"},
	"PUT /api/v1/images/{label}/rings":                      {"admin"},
	"GET /api/v1/rings":                                     {"admin"},
	"PUT /api/v1/rings":                                     {"admin"},
	"GET /api/v1/images/{label}/status":                     {"admin"},

	"GET /api/v1/rollouts":                {"admin"},
	"POST /api/v1/rollouts":               {"admin"},
	"GET /api/v1/rollouts/{id}":           {"admin"},
	"POST /api/v1/rollouts/{id}/pause":    {"admin"},
	"POST /api/v1/rollouts/{id}/resume":   {"admin"},
	"POST /api/v1/rollouts/{id}/promote":  {"admin"},
	"POST /api/v1/rollouts/{id}/halt":     {"admin"},
	"POST /api/v1/rollouts/{id}/rollback": {"admin"},

	"GET /api/v1/pins":                  {"admin", "org-own"},
	"PUT /api/v1/pins/{org}/{label}":    {"admin", "org-own"},
	"DELETE /api/v1/pins/{org}/{label}": {"admin", "org-own"},
	"GET /api/v1/resolve":               {"admin", "runner", "org-own"},
	"POST /api/v1/events":               {"admin", "runner"},
	"GET /api/v1/audit":                 {"admin"},

	"GET /api/v1/images/{label}/signatures": {"admin"},
	"GET /api/v1/rollouts/{id}/telemetry":   {"admin"},
	"GET /api/v1/rollouts/{id}/analysis":    {"admin"},

	"POST /api/v1/reports": {"admin", "org-own"},
	"GET /api/v1/reports":  {"admin"},

	"GET /api/v1/verify/targets": {"admin", "runner"},
	"POST /api/v1/verifications": {"admin", "runner"},
	"GET /api/v1/verifications":  {"admin"},

	"POST /api/v1/subscriptions":        {"admin", "org-own"},
	"GET /api/v1/subscriptions":         {"admin", "org-own"},
	"DELETE /api/v1/subscriptions/{id}": {"admin", "org-own"},
	"GET /api/v1/orgs/{org}/upcoming":   {"admin", "org-own"},

	"PUT /api/v1/orgs/{org}/alert-target":    {"admin", "org-own"},
	"GET /api/v1/orgs/{org}/alert-target":    {"admin", "org-own"},
	"DELETE /api/v1/orgs/{org}/alert-target": {"admin", "org-own"},
}

// requestFor builds a plausible request for a route, acting for org-a.
func requestFor(t *testing.T, base string, rt server.Route, rolloutID string, expires time.Time) *http.Request {
	t.Helper()
	path := strings.NewReplacer("{label}", label, "{version}", "v1", "{id}", rolloutID, "{org}", "org-a").Replace(rt.Path)
	var body string
	switch {
	case rt.Path == "/api/v1/resolve":
		path += "?org=org-a&label=" + label
	case rt.Path == "/api/v1/pins":
		path += "?org=org-a"
	case rt.Method == "PUT" && strings.HasPrefix(rt.Path, "/api/v1/pins/"):
		body = `{"version":"v1","reason":"r","expiresAt":"` + expires.Format(time.RFC3339) + `"}`
	case strings.HasSuffix(rt.Path, "/rings") && rt.Method == "PUT":
		b, _ := json.Marshal(api.Rings{Rings: threeRings})
		body = string(b)
	case rt.Path == "/api/v1/tokens":
		body = `{"name":"x","role":"runner"}`
	case rt.Path == "/api/v1/images/{label}/versions" && rt.Method == "POST":
		body = `{"version":"v-matrix","checkReport":{"verdict":"pass"}}`
	case rt.Path == "/api/v1/rollouts" && rt.Method == "POST":
		body = `{"label":"` + label + `","version":"v2"}`
	case rt.Path == "/api/v1/events":
		body = `{"events":[{"jobId":"j-matrix","org":"org-a","label":"` + label + `","version":"v1","outcome":"succeeded","startedAt":"2026-03-02T09:00:00Z","durationMs":5}]}`
	case rt.Path == "/api/v1/reports" && rt.Method == "POST":
		body = `{"label":"` + label + `","text":"ModuleNotFoundError: No module named '_sqlite3'","org":"org-a"}`
	case rt.Path == "/api/v1/subscriptions" && rt.Method == "POST":
		body = `{"org":"org-a","label":"` + label + `","url":"https://hooks.example/x","filters":["tool/php*"]}`
	case strings.HasPrefix(rt.Path, "/api/v1/subscriptions"):
		path += "?org=org-a"
	case rt.Path == "/api/v1/orgs/{org}/alert-target" && rt.Method == "PUT":
		body = `{"url":"https://hooks.example/org-a","format":"slack"}`
	case rt.Method == "POST":
		body = `{"reason":"matrix"}`
	}
	req, err := http.NewRequest(rt.Method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestAuthorizationMatrix calls every registered endpoint as every kind
// of caller: an allowed caller is never answered 401/403, a caller
// without a token or with an unknown one gets 401, any other gets 403,
// always with the JSON error body.
func TestAuthorizationMatrix(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.admin.SetRings(ctx, "", threeRings); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "v1", passReport)
	if _, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "v2", passReport)
	r, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{
		"anonymous": "",
		"bogus":     "not-a-token",
		"admin":     adminSecret,
		"runner":    e.token(t, rollout.RoleRunner),
		"org-own":   e.token(t, "org:org-a"),
		"org-other": e.token(t, "org:org-b"),
	}
	routes := e.srv.Routes()
	var names []string
	for _, rt := range routes {
		names = append(names, rt.Method+" "+rt.Path)
	}
	var inMatrix []string
	for k := range allowed {
		inMatrix = append(inMatrix, k)
	}
	slices.Sort(names)
	slices.Sort(inMatrix)
	if diff := cmp.Diff(inMatrix, names); diff != "" {
		t.Fatalf("matrix and registered routes differ (-matrix +routes):\n%s", diff)
	}
	expires := e.clock.Now().Add(24 * time.Hour)
	for _, rt := range routes {
		name := rt.Method + " " + rt.Path
		for _, caller := range callers {
			req := requestFor(t, e.URL, rt, r.ID, expires)
			if tok := tokens[caller]; tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ok := slices.Contains(allowed[name], caller)
			switch {
			case ok && (resp.StatusCode == 401 || resp.StatusCode == 403):
				t.Errorf("%s as %s: %d %s, want it allowed", name, caller, resp.StatusCode, body)
			case !ok && (caller == "anonymous" || caller == "bogus") && resp.StatusCode != 401:
				t.Errorf("%s as %s: %d, want 401", name, caller, resp.StatusCode)
			case !ok && caller != "anonymous" && caller != "bogus" && resp.StatusCode != 403:
				t.Errorf("%s as %s: %d %s, want 403", name, caller, resp.StatusCode, body)
			}
			if resp.StatusCode >= 400 {
				var eb api.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
					t.Errorf("%s as %s: error body %q is not {\"error\":{\"code\",\"message\"}}", name, caller, body)
				}
			}
		}
	}
}

// TestErrorStatuses checks the one mapping from error kinds to statuses
// through real requests.
func TestErrorStatuses(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.admin.SetRings(ctx, "", threeRings); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "v1", passReport)
	tests := []struct {
		name       string
		method     string
		path, body string
		status     int
		code       string
	}{
		{"unknown rollout", "GET", "/api/v1/rollouts/nope", "", 404, api.CodeNotFound},
		{"unknown image resolve", "GET", "/api/v1/resolve?org=a&label=nope", "", 404, api.CodeNotFound},
		{"resolve without org", "GET", "/api/v1/resolve?label=" + label, "", 400, api.CodeInvalid},
		{"duplicate version", "POST", "/api/v1/images/" + label + "/versions", `{"version":"v1"}`, 409, api.CodeConflict},
		{"unknown field", "POST", "/api/v1/images/" + label + "/versions", `{"version":"v9","colour":"red"}`, 400, api.CodeInvalid},
		{"bad limit", "GET", "/api/v1/images?limit=-1", "", 400, api.CodeInvalid},
		{"bad bake time", "POST", "/api/v1/rollouts", `{"label":"` + label + `","version":"v1","bakeTimes":{"canary":"soon"}}`, 400, api.CodeInvalid},
		{"bad audit time", "GET", "/api/v1/audit?since=yesterday", "", 400, api.CodeInvalid},
		{"revoke without reason", "POST", "/api/v1/images/" + label + "/versions/v1/revoke", `{}`, 400, api.CodeInvalid},
		{"bad ring plan", "PUT", "/api/v1/rings", `{"rings":[{"name":"a","percent":50}]}`, 400, api.CodeInvalid},
		{"token with bad role", "POST", "/api/v1/tokens", `{"name":"x","role":"root"}`, 400, api.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+adminSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb api.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || eb.Error.Code != tt.code {
				t.Errorf("%d %+v, want %d %s", resp.StatusCode, eb.Error, tt.status, tt.code)
			}
		})
	}
}

// TestBodyLimit: a body over MaxBodyBytes is refused (413) with a message
// naming the limit.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	srv, err := server.New(server.Options{Service: e.svc, Store: e.st, MaxBodyBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c, _ := apiclient.New(hs.URL, adminSecret, nil)
	_, err = c.PushVersion(context.Background(), label, api.PushVersionRequest{Version: "big", Snapshot: []byte(`"` + strings.Repeat("x", 4096) + `"`)})
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusRequestEntityTooLarge || apiErr.Code != api.CodeTooLarge || !strings.Contains(apiErr.Message, "limit of 1024 bytes") {
		t.Fatalf("oversized push: %v", err)
	}
}
