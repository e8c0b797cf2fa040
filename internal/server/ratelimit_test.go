package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/server"
)

// TestRateLimits drives tokens over their buckets: 429 with Retry-After
// and the JSON error body, one bucket per token, resolve and events on
// a bucket of their own, refill with time.
func TestRateLimits(t *testing.T) {
	e := newEnv(t)
	runner := e.token(t, "runner")
	other := e.token(t, "org:org-a")
	srv, err := server.New(server.Options{Service: e.svc, Store: e.st, Now: e.clock.Now, RateLimits: server.RateLimits{
		API: server.RateLimit{Rate: 1, Burst: 2},
		Hot: server.RateLimit{Rate: 1, Burst: 3},
	}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	type answer struct {
		Status     int
		RetryAfter string
		Code       string
	}
	call := func(token, method, path, body string) answer {
		t.Helper()
		req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		a := answer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
		if resp.StatusCode >= 400 {
			var eb api.ErrorBody
			if err := json.Unmarshal(b, &eb); err != nil {
				t.Fatalf("%s %s: %d with a body that is not the JSON error body: %s", method, path, resp.StatusCode, b)
			}
			a.Code = eb.Error.Code
		}
		return a
	}
	images := func(token string) answer { return call(token, "GET", "/api/v1/images", "") }
	resolve := func(token string) answer {
		return call(token, "GET", "/api/v1/resolve?org=org-a&label="+label+"&run=r1", "")
	}
	events := func(token string) answer { return call(token, "POST", "/api/v1/events", `{"events":[]}`) }
	limited := answer{Status: http.StatusTooManyRequests, RetryAfter: "1", Code: api.CodeRateLimited}
	notLimited := func(what string, a answer) {
		t.Helper()
		if a.Status == http.StatusTooManyRequests || a.RetryAfter != "" {
			t.Errorf("%s: %+v, want no limit", what, a)
		}
	}

	for i := range 2 {
		notLimited("admin API request "+string(rune('1'+i)), images(adminSecret))
	}
	if diff := cmp.Diff(limited, images(adminSecret)); diff != "" {
		t.Errorf("admin's third API request in a second (-want +got):\n%s", diff)
	}
	// Another token has a bucket of its own.
	notLimited("org token's API request", images(other))

	// The runner's hot bucket holds three, whichever of resolve and events.
	notLimited("resolve 1", resolve(runner))
	notLimited("events 1", events(runner))
	notLimited("resolve 2", resolve(runner))
	if diff := cmp.Diff(limited, resolve(runner)); diff != "" {
		t.Errorf("runner's fourth hot request (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(limited, events(runner)); diff != "" {
		t.Errorf("runner's fifth hot request (-want +got):\n%s", diff)
	}
	// The API bucket is untouched by the hot one, and the other way round:
	// the admin, out of API requests, still resolves.
	notLimited("runner's API request", call(runner, "GET", "/api/v1/verify/targets", ""))
	notLimited("admin's resolve", resolve(adminSecret))

	// Refused requests do not spend tokens: one second later one is back.
	e.clock.Advance(time.Second)
	notLimited("admin after a second", images(adminSecret))
	if diff := cmp.Diff(limited, images(adminSecret)); diff != "" {
		t.Errorf("admin's second request after a second (-want +got):\n%s", diff)
	}
	notLimited("runner after a second", resolve(runner))
	// Public routes and unauthenticated requests are not metered.
	for range 5 {
		notLimited("healthz", call("", "GET", "/healthz", ""))
	}
}
