package server

import (
	"fmt"
	"net/http"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// registerTokens adds the token lifecycle endpoints (admin only): list
// (never the secret), revoke and rotate. Creation is POST /api/v1/tokens.
func (s *Server) registerTokens() {
	s.handle("GET", "/api/v1/tokens", AdminOnly, s.listTokens)
	s.handle("DELETE", "/api/v1/tokens/{id}", AdminOnly, s.revokeToken)
	s.handle("POST", "/api/v1/tokens/{id}/rotate", AdminOnly, s.rotateToken)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p Principal) error {
	var req api.CreateTokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	secret, t, err := createToken(r.Context(), s.st, p.Actor(), rollout.Token{Name: req.Name, Role: req.Role, ExpiresAt: req.ExpiresAt}, "", s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.CreateTokenResponse{ID: t.ID, Name: t.Name, Role: t.Role, Token: secret, ExpiresAt: t.ExpiresAt})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.st.ListTokens(r.Context(), pg)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	writeJSON(w, http.StatusOK, list(items, next))
	return nil
}

// revokeToken revokes a token for good; it stops working on this replica
// at once and on the others within their token cache TTL. Revoking a
// revoked token answers 200 with it as it is: the first revocation (and
// its reason, in the audit log) stands and nothing is written. The last
// admin token that is not revoked cannot be revoked (409): rotate it.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p Principal) error {
	reason, err := decodeReason(r)
	if err != nil {
		return err
	}
	if err := rollout.CheckText("reason", reason, rollout.MaxReason); err != nil {
		return err
	}
	t, err := s.revoke(r, p, r.PathValue("id"), reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) revoke(r *http.Request, p Principal, id, reason string) (rollout.Token, error) {
	ctx := r.Context()
	cur, err := s.tokenByID(r, id)
	if err != nil {
		return rollout.Token{}, err
	}
	if cur.Role == rollout.RoleAdmin && cur.RevokedAt.IsZero() {
		n, err := s.st.CountTokens(ctx, rollout.RoleAdmin)
		if err != nil {
			return rollout.Token{}, fmt.Errorf("count admin tokens: %w", err)
		}
		if n <= 1 {
			return rollout.Token{}, fmt.Errorf("token %s is the last admin token: rotate it (imagegate token rotate %s) or create another admin token first: %w", id, id, rollout.ErrConflict)
		}
	}
	t, _, err := s.st.RevokeToken(ctx, id, s.now(), rollout.AuditEntry{Actor: p.Actor(), Action: "token.revoke", Subject: "token/" + id, Reason: reason,
		Details: []byte(fmt.Sprintf(`{"name":%q,"role":%q}`, cur.Name, cur.Role))})
	if err != nil {
		return rollout.Token{}, err
	}
	s.tokens.forget(id)
	return t, nil
}

// tokenByID finds a token by its id (tokens are few: a scan of the list).
func (s *Server) tokenByID(r *http.Request, id string) (rollout.Token, error) {
	pg := rollout.Page{Limit: MaxPageLimit}
	for {
		items, next, err := s.st.ListTokens(r.Context(), pg)
		if err != nil {
			return rollout.Token{}, fmt.Errorf("find token %s: %w", id, err)
		}
		for _, t := range items {
			if t.ID == id {
				return t, nil
			}
		}
		if next == "" {
			return rollout.Token{}, fmt.Errorf("token %s: %w (imagegate token list shows the ids)", id, rollout.ErrNotFound)
		}
		pg.After = next
	}
}

// rotateToken replaces a token by a new one of the same name, role and
// expiry, and revokes the old: how a leaked or aging bootstrap admin
// token (IMAGEGATE_ADMIN_TOKEN) is changed. The new secret is shown only
// in this answer.
func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request, p Principal) error {
	reason, err := decodeReason(r)
	if err != nil {
		return err
	}
	if err := rollout.CheckText("reason", reason, rollout.MaxReason); err != nil {
		return err
	}
	id := r.PathValue("id")
	cur, err := s.tokenByID(r, id)
	if err != nil {
		return err
	}
	if why := cur.Usable(s.now()); why != "" {
		return fmt.Errorf("token %s was %s; create a new one instead: %w", id, why, rollout.ErrPrecondition)
	}
	if reason == "" {
		reason = "rotates " + id
	}
	secret, t, err := createToken(r.Context(), s.st, p.Actor(), rollout.Token{Name: cur.Name, Role: cur.Role, ExpiresAt: cur.ExpiresAt}, reason, s.now())
	if err != nil {
		return err
	}
	if _, _, err := s.st.RevokeToken(r.Context(), id, s.now(), rollout.AuditEntry{Actor: p.Actor(), Action: "token.revoke", Subject: "token/" + id,
		Reason: "rotated: replaced by " + t.ID, Details: []byte(fmt.Sprintf(`{"name":%q,"role":%q,"replacedBy":%q}`, cur.Name, cur.Role, t.ID))}); err != nil {
		return fmt.Errorf("rotate token %s: the new token %s exists but the old one is not revoked; revoke it: %w", id, t.ID, err)
	}
	s.tokens.forget(id)
	writeJSON(w, http.StatusCreated, api.CreateTokenResponse{ID: t.ID, Name: t.Name, Role: t.Role, Token: secret, ExpiresAt: t.ExpiresAt})
	return nil
}
