// Package ui is the dashboard `imagegate serve` serves under /ui/: pages
// rendered on the server with html/template from templates and a style
// sheet embedded in the binary (no build step), charts drawn as inline
// SVG, live updates by Server-Sent Events that a small script applies.
// Every page works as a plain reload without JavaScript, and the
// Content-Security-Policy allows no inline script or style.
//
// It reads and steers the control plane through Service (what
// *rollout.Service offers), keeps its sessions in a rollout.SessionStore
// (the shared database, so any replica serves them), and judges the API
// tokens people log in with through an Authenticator, which the server
// provides so that a token is judged exactly as the API judges it. It
// knows no store, server or command.
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// Service is what the dashboard reads and changes: methods of
// *rollout.Service. Errors wrap the rollout.Err* kinds, which become the
// page's HTTP status; actor is the audit log's name of the person acting.
type Service interface {
	Images(ctx context.Context, p rollout.Page) ([]rollout.Image, string, error)
	Versions(ctx context.Context, label string, p rollout.Page) ([]rollout.Version, string, error)
	// Version returns the version with its snapshot and check report.
	Version(ctx context.Context, label, version string) (rollout.Version, error)
	Status(ctx context.Context, label string) (rollout.LabelStatus, error)
	GetRollout(ctx context.Context, id string) (rollout.Rollout, error)
	ListRollouts(ctx context.Context, label string, states []rollout.State, p rollout.Page) ([]rollout.Rollout, string, error)
	// Analysis returns ErrPrecondition when telemetry analysis is off.
	Analysis(ctx context.Context, id string) (rollout.RolloutAnalysis, error)
	RingTelemetry(ctx context.Context, id string, ring int) (rollout.Telemetry, error)
	// RingTrend returns a ring's failure rates over time, new vs old.
	RingTrend(ctx context.Context, id string, ring int) (rollout.RingTrend, error)
	// SignaturesWithTrend is Signatures with each one's failed jobs per
	// hour over window, up to the current hour.
	SignaturesWithTrend(ctx context.Context, label, version string, window time.Duration, p rollout.Page) ([]rollout.Signature, string, error)
	// Resolutions is what Resolve answers org now for each label, not
	// counted as served.
	Resolutions(org string, labels []string) ([]rollout.Resolution, error)
	Audit(ctx context.Context, f rollout.AuditFilter, p rollout.Page) ([]rollout.AuditEntry, string, error)
	ListPins(ctx context.Context, org, label string, p rollout.Page) ([]rollout.PinView, string, error)
	SetPin(ctx context.Context, actor string, pin rollout.Pin) (rollout.Pin, error)
	ClearPin(ctx context.Context, actor, org, label string) error
	StartRollout(ctx context.Context, actor string, req rollout.StartRequest) (rollout.Rollout, error)
	Pause(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	Resume(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	Promote(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	Halt(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	Rollback(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
}

// ReportLister lists user reports as *rollout.Reports does: newest first,
// narrowed by f, errors wrapping the rollout.Err* kinds. Safe for
// concurrent use.
type ReportLister interface {
	List(ctx context.Context, f rollout.ReportFilter, p rollout.Page) ([]rollout.Report, string, error)
}

var _ ReportLister = (*rollout.Reports)(nil)

// Identity is the caller behind a session: the API token it was opened
// with.
type Identity struct {
	TokenID, Name, Role string
	// Org is the organisation of an org:<id> token, "" otherwise.
	Org string
	// Actor is how the audit log names the caller (the API's wording, so
	// the log reads the same whichever door a change came through).
	Actor string
	// ExpiresAt is the token's expiry, zero when it has none.
	ExpiresAt time.Time
}

// IsAdmin reports whether the identity may act on rollouts.
func (id Identity) IsAdmin() bool { return id.Role == rollout.RoleAdmin }

// Authenticator judges API tokens as the API does.
//
// Contract: Authenticate takes a token in clear (the login form),
// AuthenticateHash its SHA-256 (what a session keeps); both return an
// error wrapping api.ErrUnauthenticated for an unknown, revoked or expired
// token, and may answer from a short cache (a revocation then holds
// within the API's token cache TTL). Safe for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
	AuthenticateHash(ctx context.Context, hash []byte) (Identity, error)
}

// Options configure the dashboard.
type Options struct {
	Service  Service
	Sessions rollout.SessionStore
	Auth     Authenticator
	Logger   *slog.Logger
	// Now is the clock of sessions and bake progress; time.Now when nil.
	Now func() time.Time
	// SessionTTL is how long a login lasts (default 12h, never past the
	// token's expiry).
	SessionTTL time.Duration
	// LiveInterval is how often a live page's stream looks for changes
	// (default 2s).
	LiveInterval time.Duration
	// StaleAfter is how long a label's status and a rollout's analysis
	// are shown before they are read again, in the background (default
	// 2s; see staleCache).
	StaleAfter time.Duration
	// SecureCookies marks the session cookies Secure on every request,
	// not only those that arrived over TLS: set it when people reach the
	// server over https through a proxy that terminates TLS (serve sets
	// it from an https externalURL). A request's own X-Forwarded-Proto is
	// never trusted for this: any client can send one.
	SecureCookies bool
	// Reports, when set, shows on the Signatures page the user reports
	// matched to each signature.
	Reports ReportLister
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Handler serves the dashboard under /ui/. It is an http.Handler.
type Handler struct {
	svc      Service
	sessions rollout.SessionStore
	auth     Authenticator
	log      *slog.Logger
	now      func() time.Time
	ttl      time.Duration
	live     time.Duration
	pages    *pages
	mux      *http.ServeMux
	versions *versionCache
	secure   bool
	reports  ReportLister

	statuses  *staleCache[rollout.LabelStatus]
	newest    *staleCache[*rollout.Version]
	sigPages  *staleCache[signaturePage]
	analyses  *staleCache[rollout.RolloutAnalysis]
	telemetry *staleCache[rollout.Telemetry]
	trends    *staleCache[rollout.RingTrend]
}

// Prefix is where the dashboard lives.
const Prefix = "/ui/"

// New builds the dashboard.
func New(opts Options) (*Handler, error) {
	if opts.Service == nil || opts.Sessions == nil || opts.Auth == nil {
		return nil, errors.New("ui: Service, Sessions and Auth are required")
	}
	h := &Handler{svc: opts.Service, sessions: opts.Sessions, auth: opts.Auth, log: opts.Logger, now: opts.Now,
		ttl: opts.SessionTTL, live: opts.LiveInterval, versions: newVersionCache(128), secure: opts.SecureCookies, reports: opts.Reports}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.ttl <= 0 {
		h.ttl = 12 * time.Hour
	}
	if h.live <= 0 {
		h.live = 2 * time.Second
	}
	stale := opts.StaleAfter
	if stale <= 0 {
		stale = 2 * time.Second
	}
	h.statuses = newStaleCache[rollout.LabelStatus](stale, 1000)
	h.newest = newStaleCache[*rollout.Version](stale, 1000)
	h.sigPages = newStaleCache[signaturePage](stale, 200)
	h.analyses = newStaleCache[rollout.RolloutAnalysis](stale, 200)
	h.telemetry = newStaleCache[rollout.Telemetry](stale, 200)
	h.trends = newStaleCache[rollout.RingTrend](stale, 200)
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	h.pages = p
	h.routes()
	return h, nil
}

// Access says who may open a page.
type access int

const (
	anyone    access = iota // no session needed (login)
	loggedIn                // admin or an org token
	adminOnly               // admin
)

type pageFunc func(w http.ResponseWriter, r *http.Request, s *session) error

func (h *Handler) routes() {
	h.mux = http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	fileServer := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	h.mux.Handle("GET /ui/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fileServer.ServeHTTP(w, r)
	}))
	h.mux.HandleFunc("GET /ui/login", h.loginForm)
	h.mux.HandleFunc("POST /ui/login", h.login)
	h.page("POST /ui/logout", loggedIn, h.logout)

	h.page("GET /ui/{$}", loggedIn, h.imagesPage)
	h.page("GET /ui/live/images", adminOnly, h.imagesLive)
	h.page("GET /ui/images/{label}", loggedIn, h.imagePage)
	h.page("GET /ui/images/{label}/versions/{version}", loggedIn, h.versionPage)
	h.page("GET /ui/images/{label}/versions/{version}/{file}", loggedIn, h.versionFile)
	h.page("GET /ui/rollouts/{id}", adminOnly, h.rolloutPage)
	h.page("GET /ui/live/rollouts/{id}", adminOnly, h.rolloutLive)
	h.page("GET /ui/rollouts/{id}/confirm", adminOnly, h.confirmPage)
	h.page("POST /ui/rollouts/{id}/act", adminOnly, h.act)
	h.page("GET /ui/images/{label}/hotfix", adminOnly, h.hotfixPage)
	h.page("POST /ui/images/{label}/hotfix", adminOnly, h.hotfix)
	h.page("GET /ui/signatures", adminOnly, h.signaturesPage)
	h.page("GET /ui/pins", loggedIn, h.pinsPage)
	h.page("POST /ui/pins", loggedIn, h.setPin)
	h.page("POST /ui/pins/clear", loggedIn, h.clearPin)
	h.page("GET /ui/audit", adminOnly, h.auditPage)
}

// page registers a handler that needs a session (and, for POST, the
// session's CSRF value).
func (h *Handler) page(pattern string, a access, fn pageFunc) {
	post := strings.HasPrefix(pattern, "POST ")
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s, err := h.session(r)
		if err != nil {
			if status, _ := api.Classify(err); status != http.StatusUnauthorized || post || strings.HasPrefix(r.URL.Path, "/ui/live/") {
				h.fail(w, r, nil, err)
				return
			}
			// A page asked for without a session: log in, then come back.
			http.Redirect(w, r, "/ui/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if a == adminOnly && !s.id.IsAdmin() {
			h.fail(w, r, s, fmt.Errorf("this page is for admins; your token %q has role %s: %w", s.id.Name, s.id.Role, rollout.ErrForbidden))
			return
		}
		if post {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := s.checkCSRF(r); err != nil {
				h.fail(w, r, s, err)
				return
			}
		}
		if err := checkPath(r); err != nil {
			h.fail(w, r, s, err)
			return
		}
		if err := fn(w, r, s); err != nil {
			h.fail(w, r, s, err)
		}
	})
}

// pathNames are the path values every route may carry; each is an
// identifier of rollout's input grammar, as the API checks them.
var pathNames = []string{"label", "version", "id"}

func checkPath(r *http.Request) error {
	for _, n := range pathNames {
		if v := r.PathValue(n); v != "" {
			if err := rollout.CheckName(n+" (in the path)", v); err != nil {
				return err
			}
		}
	}
	return nil
}

// csp allows only the dashboard's own files: no inline script or style,
// no framing, forms posted only here.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// fail renders err as an error page with the status of its kind.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, _ := api.Classify(err)
	if status == http.StatusInternalServerError {
		h.log.Error("dashboard", "path", r.URL.Path, "err", err)
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		status = http.StatusRequestEntityTooLarge
	}
	if strings.HasPrefix(r.URL.Path, "/ui/live/") {
		http.Error(w, err.Error(), status)
		return
	}
	h.render(w, r, status, "error", s, errorData{Status: status, Title: http.StatusText(status), Message: err.Error()})
}

type errorData struct {
	Status         int
	Title, Message string
}
