// Package server is imagegate's control-plane HTTP API: REST JSON under
// /api/v1 over rollout.Service, bearer-token authentication with roles,
// the OpenAPI document, health endpoints and Prometheus metrics.
// The bodies it reads and writes are package api's, which the client
// shares.
//
// It knows the domain (package rollout) and nothing of the stores: the
// serve command wires a store and a service into it.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// Service is what the API serves: the methods of *rollout.Service it calls.
// Errors wrap the rollout.Err* kinds, which become HTTP statuses.
type Service interface {
	PushVersion(ctx context.Context, actor string, v rollout.Version) (rollout.Version, error)
	RevokeVersion(ctx context.Context, actor, label, version, reason string) error
	SetRings(ctx context.Context, actor, label string, rings []rollout.Ring) error
	StartRollout(ctx context.Context, actor string, req rollout.StartRequest) (rollout.Rollout, error)
	Pause(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	Resume(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	Promote(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	Halt(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	Rollback(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	GetRollout(ctx context.Context, id string) (rollout.Rollout, error)
	ListRollouts(ctx context.Context, label string, states []rollout.State, p rollout.Page) ([]rollout.Rollout, string, error)
	SetPin(ctx context.Context, actor string, pin rollout.Pin) (rollout.Pin, error)
	ClearPin(ctx context.Context, actor, org, label string) error
	ListPins(ctx context.Context, org, label string, p rollout.Page) ([]rollout.PinView, string, error)
	// Resolve is the hot path: it must answer from memory.
	Resolve(ctx context.Context, org, label, runID string) (rollout.Resolution, error)
	// IngestEvents returns only once the events are durable.
	IngestEvents(ctx context.Context, events []rollout.JobEvent) (int, error)
	Status(ctx context.Context, label string) (rollout.LabelStatus, error)
	Audit(ctx context.Context, f rollout.AuditFilter, p rollout.Page) ([]rollout.AuditEntry, string, error)
	Images(ctx context.Context, p rollout.Page) ([]rollout.Image, string, error)
	Versions(ctx context.Context, label string, p rollout.Page) ([]rollout.Version, string, error)
	Version(ctx context.Context, label, version string) (rollout.Version, error)
	RingTelemetry(ctx context.Context, id string, ring int) (rollout.Telemetry, error)
	RingTrend(ctx context.Context, id string, ring int) (rollout.RingTrend, error)
	Resolutions(org string, labels []string) ([]rollout.Resolution, error)
	Analysis(ctx context.Context, id string) (rollout.RolloutAnalysis, error)
	Signatures(ctx context.Context, label, version string, p rollout.Page) ([]rollout.Signature, string, error)
	SignaturesWithTrend(ctx context.Context, label, version string, window time.Duration, p rollout.Page) ([]rollout.Signature, string, error)
}

// Store is the part of rollout.Store the server reads directly: tokens,
// the ring plan, and a cheap query for readiness.
type Store interface {
	TokenStore
	GetRings(ctx context.Context, label string) ([]rollout.Ring, error)
	Generation(ctx context.Context) (int64, error)
}

// Controller is what the metrics report of the rollout controller.
type Controller interface {
	IsLeader() bool // holds the controller lease
	Ticks() int64   // reconcile passes run
}

// Options configure a Server.
type Options struct {
	Service Service
	Store   Store
	// Controller, when set, is reported by imagegate_controller_leader and
	// imagegate_controller_ticks_total.
	Controller Controller
	// Registry receives the metrics; a fresh one when nil. /metrics serves
	// it together with the Go runtime collectors.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Now is the clock for token caching and token creation; time.Now when nil.
	Now func() time.Time
	// TokenCacheTTL bounds how long a looked-up token is trusted without
	// asking the store again (default 30s).
	TokenCacheTTL time.Duration
	// MaxBodyBytes limits request bodies (default 256 MiB: snapshots of
	// big images run to 100 MB).
	MaxBodyBytes int64
	// Reports serves POST and GET /api/v1/reports; without it they
	// answer 412.
	Reports Reports
	// Verify serves re-verification (/api/v1/verify/targets,
	// /api/v1/verifications) and its age gauge; without it they answer 412.
	Verify Verify
	// Notices serves subscriptions and upcoming changes; without it they
	// answer 412.
	Notices Notices
	// RateLimits bound each token's requests (429 with Retry-After over
	// them); the zero value sets no limit.
	RateLimits RateLimits
	// Sessions, when set, serves the dashboard (package ui) under /ui/,
	// with its logins kept there, and redirects / to it.
	Sessions rollout.SessionStore
	// ExternalURL is how people reach the server (the serve config's
	// externalURL); when it is https the dashboard's cookies are Secure
	// even on requests a TLS-terminating proxy forwards over plain HTTP.
	ExternalURL string
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	svc     Service
	st      Store
	log     *slog.Logger
	now     func() time.Time
	tokens  *tokenCache
	metrics *Metrics
	maxBody int64
	mux     *http.ServeMux
	routes  []Route
	reports Reports
	verify  Verify
	notices Notices
	limiter *limiter
	deps    dependencyHealth
}

// New builds the server and registers its routes and metrics.
func New(opts Options) (*Server, error) {
	if opts.Service == nil || opts.Store == nil {
		return nil, fmt.Errorf("server: Service and Store are required")
	}
	s := &Server{svc: opts.Service, st: opts.Store, log: opts.Logger, now: opts.Now, maxBody: opts.MaxBodyBytes, reports: opts.Reports, verify: opts.Verify, notices: opts.Notices}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBody == 0 {
		s.maxBody = 256 << 20
	}
	ttl := opts.TokenCacheTTL
	if ttl == 0 {
		ttl = 30 * time.Second
	}
	s.tokens = newTokenCache(opts.Store, ttl, s.now)
	s.limiter = newLimiter(opts.RateLimits, s.now)
	s.tokens.log = s.log
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, opts.Service, opts.Controller)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if err := registerVerifyMetrics(reg, opts.Verify, s.now); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.register()
	if opts.Sessions != nil {
		if err := s.mountDashboard(opts.Sessions, opts.ExternalURL); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.routerErrors(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Access says who may call a route. Org-scoped routes additionally check,
// in the handler, that an org token acts only for its own organisation.
type Access int

// Access levels.
const (
	Public      Access = iota
	AdminOnly          // admin
	RunnerWrite        // admin, runner
	OrgRead            // admin, any org token (catalogue reads)
	OrgOwn             // admin, the org token of the organisation in the request
	ResolveAny         // admin, runner, the org token of the organisation in the request
)

func (a Access) allows(p Principal) bool {
	switch a {
	case Public:
		return true
	case AdminOnly:
		return p.isAdmin()
	case RunnerWrite:
		return p.isAdmin() || p.isRunner()
	case OrgRead, OrgOwn:
		return p.isAdmin() || p.Org != ""
	case ResolveAny:
		return p.isAdmin() || p.isRunner() || p.Org != ""
	}
	return false
}

// Route is one registered endpoint; the OpenAPI test checks the document
// against this list.
type Route struct {
	Method, Path string
	Access       Access
}

// Routes lists every registered endpoint.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

type handlerFunc func(w http.ResponseWriter, r *http.Request, p Principal) error

func (s *Server) handle(method, path string, access Access, h handlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Access: access})
	route := method + " " + path
	requests := s.metrics.requests.MustCurryWith(prometheus.Labels{"route": route})
	names, limit, hot := wildcards(path), s.bodyLimit(route), route == "POST /api/v1/events"
	s.mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		s.serve(sw, r, access, names, limit, hot, h)
		s.noteWrite(r, sw.status)
		requests.WithLabelValues(strconv.Itoa(sw.status)).Inc()
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, access Access, names []string, limit int64, hot bool, h handlerFunc) {
	var p Principal
	if access != Public {
		var err error
		p, err = s.tokens.authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !access.allows(p) {
			s.writeError(w, r, fmt.Errorf("role %q may not %s %s: %w", p.Role, r.Method, r.URL.Path, rollout.ErrForbidden))
			return
		}
		if err := s.limiter.allow(p.TokenID, hot); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := checkInput(r, names); err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	if err := h(w, r, p); err != nil {
		s.writeError(w, r, err)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// decode reads a JSON request body strictly: unknown fields are a client
// bug that should be reported rather than ignored.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if dec.More() {
		return fmt.Errorf("request body: more than one JSON value: %w", rollout.ErrInvalid)
	}
	return nil
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Errorf("request body is larger than the server's limit of %d bytes for this endpoint: %w", tooBig.Limit, api.ErrTooLarge)
	}
	return fmt.Errorf("request body: %v: %w", err, rollout.ErrInvalid)
}

func list[T any](items []T, next string) api.List[T] {
	if items == nil {
		items = []T{}
	}
	return api.List[T]{Items: items, Next: next}
}

// MaxPageLimit is the largest ?limit= honoured; DefaultPageLimit applies
// when none is given.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

func page(r *http.Request) (rollout.Page, error) {
	q := r.URL.Query()
	p := rollout.Page{After: q.Get("after"), Limit: DefaultPageLimit}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return p, fmt.Errorf("limit %q: want a positive integer: %w", l, rollout.ErrInvalid)
		}
		p.Limit = min(n, MaxPageLimit)
	}
	return p, nil
}
