package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/ui"
)

// dashboardAuth lets the dashboard judge tokens with the API's own token
// cache: the same refusals (unknown, revoked, expired), the same TTL.
type dashboardAuth struct{ c *tokenCache }

var _ ui.Authenticator = dashboardAuth{}

func (a dashboardAuth) Authenticate(ctx context.Context, token string) (ui.Identity, error) {
	return a.AuthenticateHash(ctx, HashToken(token))
}

func (a dashboardAuth) AuthenticateHash(ctx context.Context, hash []byte) (ui.Identity, error) {
	if len(hash) != sha256.Size {
		return ui.Identity{}, fmt.Errorf("malformed token hash: %w", api.ErrUnauthenticated)
	}
	p, err := a.c.authenticateKey(ctx, [sha256.Size]byte(hash))
	if err != nil {
		return ui.Identity{}, err
	}
	id := ui.Identity{TokenID: p.TokenID, Name: p.Name, Role: p.Role, Org: p.Org, Actor: p.Actor()}
	a.c.mu.RLock()
	id.ExpiresAt = a.c.m[[sha256.Size]byte(hash)].token.ExpiresAt
	a.c.mu.RUnlock()
	return id, nil
}

// mountDashboard serves the dashboard under /ui/ and sends / there.
// An https externalURL means TLS ends before this process (or here too):
// the cookies must then be Secure whatever the forwarded request says.
func (s *Server) mountDashboard(sessions rollout.SessionStore, externalURL string) error {
	u, err := url.Parse(externalURL)
	secure := err == nil && strings.EqualFold(u.Scheme, "https")
	h, err := ui.New(ui.Options{Service: s.svc, Sessions: sessions, Auth: dashboardAuth{s.tokens}, Logger: s.log, Now: s.now, SecureCookies: secure,
		Reports: s.reports})
	if err != nil {
		return err
	}
	s.mux.Handle(ui.Prefix, h)
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ui.Prefix, http.StatusFound)
	})
	return nil
}
