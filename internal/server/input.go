package server

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// The edge: every path and query value is checked against rollout's input
// grammar (names.go) before a handler runs, so no route — today's or one
// added later — hands a store a string it cannot keep (PostgreSQL refuses
// NUL and invalid UTF-8 in text) or one the CLI could never address again.
// Bodies are checked field by field by the Service.

// MaxControlBody bounds the body of every route but a version push
// (snapshots of big images run to 100 MB) and a batch of job events,
// which Options.MaxBodyBytes bounds.
const MaxControlBody = 1 << 20

// bigBodies are the routes Options.MaxBodyBytes bounds.
var bigBodies = map[string]bool{
	"POST /api/v1/images/{label}/versions": true,
	"POST /api/v1/events":                  true,
}

func (s *Server) bodyLimit(route string) int64 {
	if bigBodies[route] {
		return s.maxBody
	}
	return min(MaxControlBody, s.maxBody)
}

var wildcardRE = regexp.MustCompile(`\{([A-Za-z0-9_]+)(?:\.\.\.)?\}`)

// wildcards lists the path wildcards of a route pattern.
func wildcards(path string) []string {
	var out []string
	for _, m := range wildcardRE.FindAllStringSubmatch(path, -1) {
		out = append(out, m[1])
	}
	return out
}

// idQuery are the query parameters that are identifiers; "run" is a key;
// every other parameter is one line of text (filters such as ?actor= and
// ?subject=, cursors, numbers, times, which their handlers parse further).
var idQuery = map[string]bool{"label": true, "org": true, "version": true, "signature": true}

// checkInput refuses a request whose path values or query parameters break
// the input grammar. Path wildcards are identifiers (label, version, org,
// id, and whatever later routes name).
func checkInput(r *http.Request, names []string) error {
	for _, name := range names {
		field := name
		if name == "id" {
			field = "rollout id"
			if strings.HasPrefix(r.URL.Path, "/api/v1/tokens/") {
				field = "token id"
			}
		}
		if err := rollout.CheckName(field+" (in the path)", r.PathValue(name)); err != nil {
			return err
		}
	}
	return checkQuery(r.URL.RawQuery)
}

func checkQuery(raw string) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Errorf("query %.60q: %v: %w", raw, err, rollout.ErrInvalid)
	}
	for k, vs := range q {
		if err := rollout.CheckLine("query parameter name", k, rollout.MaxLine); err != nil {
			return err
		}
		for _, v := range vs {
			field := "query parameter " + k
			switch {
			case v == "":
				// An empty filter is no filter.
			case idQuery[k]:
				err = rollout.CheckName(field, v)
			case k == "run":
				err = rollout.CheckKey(field, v, rollout.MaxKey)
			default:
				err = rollout.CheckLine(field, v, rollout.MaxLine)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// IdempotencyKeyHeader names the request header that makes a POST safe
// to retry (POST /api/v1/reports), as Stripe's API and the IETF draft
// draft-ietf-httpapi-idempotency-key-header call it.
const IdempotencyKeyHeader = "Idempotency-Key"

// idempotencyKey returns r's Idempotency-Key, "" when it has none; a key
// that breaks the input grammar (rollout.CheckIdempotencyKey), an empty
// one, or two of them are ErrInvalid: a retry under a key the server
// cannot keep would not be recognised as one.
func idempotencyKey(r *http.Request) (string, error) {
	vs := r.Header.Values(IdempotencyKeyHeader)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("%s header given %d times: %w: send one key per request", IdempotencyKeyHeader, len(vs), rollout.ErrInvalid)
	}
	if vs[0] == "" {
		return "", fmt.Errorf("%s header is empty: %w: send a key (such as a random UUID) or no header", IdempotencyKeyHeader, rollout.ErrInvalid)
	}
	return vs[0], rollout.CheckIdempotencyKey(vs[0])
}

// routerErrors answers what the mux finds no route for — under /api/v1 a
// 404 or a 405 — with the JSON error body every other error has; the
// mux's own answers (plain text) stay for paths outside the API, and its
// redirects everywhere.
func (s *Server) routerErrors(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		return false
	}
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusNotFound:
		writeJSON(w, http.StatusNotFound, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeNotFound,
			Message: fmt.Sprintf("no such endpoint: %s %s; the API is described at /api/v1/openapi.json", r.Method, r.URL.Path)}})
	case http.StatusMethodNotAllowed:
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeJSON(w, http.StatusMethodNotAllowed, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeNotAllowed,
			Message: fmt.Sprintf("%s is not served at %s (allowed: %s)", r.Method, r.URL.Path, probe.header.Get("Allow"))}})
	default:
		return false
	}
	return true
}

// statusProbe records what a mux-internal handler (NotFound, the 405
// answer) would write, without writing it.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
