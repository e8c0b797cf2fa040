package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// Cookies: the session's secret, and the login form's own CSRF value
// (double submit: there is no session to keep it in yet).
const (
	sessionCookie = "imagegate_session"
	loginCookie   = "imagegate_login"
)

// session is a logged-in request's caller.
type session struct {
	id   Identity
	csrf string
	hash []byte
}

// CSRF is the value every form of the session carries.
func (s *session) CSRF() string { return s.csrf }

// Identity is who is logged in.
func (s *session) Identity() Identity { return s.id }

// checkCSRF refuses a POST whose form lacks the session's CSRF value: a
// page on another site can make the browser post, but cannot read it.
func (s *session) checkCSRF(r *http.Request) error {
	got := r.PostFormValue("csrf")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
		return fmt.Errorf("the form's CSRF token is missing or wrong: reload the page and submit it again: %w", rollout.ErrForbidden)
	}
	return nil
}

func randomString() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate session secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashOf(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// session returns the caller of r: its cookie's session, still unexpired,
// whose token the Authenticator still accepts, and not a runner's.
func (h *Handler) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, fmt.Errorf("not logged in: open /ui/login: %w", api.ErrUnauthenticated)
	}
	hash := hashOf(c.Value)
	st, err := h.sessions.SessionByHash(r.Context(), hash)
	if errors.Is(err, rollout.ErrNotFound) {
		return nil, fmt.Errorf("the session has ended: log in again: %w", api.ErrUnauthenticated)
	}
	if err != nil {
		return nil, err
	}
	if !h.now().Before(st.ExpiresAt) {
		return nil, fmt.Errorf("the session expired at %s: log in again: %w", st.ExpiresAt.Format("2006-01-02 15:04 MST"), api.ErrUnauthenticated)
	}
	id, err := h.auth.AuthenticateHash(r.Context(), st.TokenHash)
	if err != nil {
		return nil, err
	}
	if id.Role == rollout.RoleRunner {
		return nil, fmt.Errorf("runner tokens cannot use the dashboard: %w", rollout.ErrForbidden)
	}
	return &session{id: id, csrf: st.CSRF, hash: hash}, nil
}

type loginData struct {
	CSRF, Next, Message string
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.showLogin(w, r, http.StatusOK, "")
}

func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v, err := randomString()
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: v, Path: "/ui/login", HttpOnly: true, Secure: h.secureCookie(r),
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	h.render(w, r, status, "login", nil, loginData{CSRF: v, Next: safeNext(r.FormValue("next")), Message: msg})
}

// safeNext keeps a post-login destination only when it is a dashboard
// path, so the login form cannot be made to send people elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	c, err := r.Cookie(loginCookie)
	got := r.PostFormValue("csrf")
	if err != nil || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) != 1 {
		h.showLogin(w, r, http.StatusForbidden, "The form had expired or did not come from this page. Enter the token again.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		h.showLogin(w, r, http.StatusBadRequest, "Enter an API token (imagegate token create prints one).")
		return
	}
	id, err := h.auth.Authenticate(r.Context(), token)
	if err != nil {
		status, _ := api.Classify(err)
		if status == http.StatusInternalServerError {
			h.fail(w, r, nil, err)
			return
		}
		h.showLogin(w, r, http.StatusUnauthorized, "That token was refused: "+err.Error())
		return
	}
	if id.Role == rollout.RoleRunner {
		h.showLogin(w, r, http.StatusForbidden, "Runner tokens cannot log in to the dashboard: use an admin or an organisation token.")
		return
	}
	secret, err := randomString()
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	csrf, err := randomString()
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	now := h.now()
	exp := now.Add(h.ttl)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(exp) {
		exp = id.ExpiresAt
	}
	if _, err := h.sessions.DeleteExpiredSessions(r.Context(), now); err != nil {
		h.log.Warn("prune dashboard sessions", "err", err)
	}
	if err := h.sessions.CreateSession(r.Context(), rollout.Session{Hash: hashOf(secret), TokenHash: hashOf(token), TokenID: id.TokenID,
		CSRF: csrf, CreatedAt: now, ExpiresAt: exp}); err != nil {
		h.fail(w, r, nil, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: Prefix, HttpOnly: true, Secure: h.secureCookie(r),
		// MaxAge, not Expires: the browser's clock may differ from ours.
		SameSite: http.SameSiteStrictMode, MaxAge: max(1, int(exp.Sub(now).Seconds()))})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/ui/login", MaxAge: -1})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := h.sessions.DeleteSession(r.Context(), s.hash); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: h.secureCookie(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return nil
}

// secureCookie reports whether r's cookies are marked Secure: over TLS,
// or always when Options.SecureCookies says TLS ends at a proxy.
func (h *Handler) secureCookie(r *http.Request) bool { return h.secure || r.TLS != nil }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
