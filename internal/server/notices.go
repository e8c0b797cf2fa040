package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// Notices is what the subscription endpoints call: *rollout.Notices.
type Notices interface {
	Subscribe(ctx context.Context, actor string, s rollout.Subscription) (rollout.Subscription, error)
	Subscriptions(ctx context.Context, f rollout.SubscriptionFilter, p rollout.Page) ([]rollout.Subscription, string, error)
	Unsubscribe(ctx context.Context, actor, org, id string) error
	Upcoming(ctx context.Context, org string) ([]rollout.ChangeNotice, error)
	SetOrgTarget(ctx context.Context, actor string, t rollout.OrgTarget) (rollout.OrgTarget, error)
	OrgTarget(ctx context.Context, org string) (rollout.OrgTarget, error)
	ClearOrgTarget(ctx context.Context, actor, org string) error
}

var _ Notices = (*rollout.Notices)(nil)

// registerNotices adds change-notice subscriptions: an organisation
// manages its own (an admin any organisation's).
func (s *Server) registerNotices() {
	s.handle("POST", "/api/v1/subscriptions", OrgOwn, s.subscribe)
	s.handle("GET", "/api/v1/subscriptions", OrgOwn, s.listSubscriptions)
	s.handle("DELETE", "/api/v1/subscriptions/{id}", OrgOwn, s.unsubscribe)
	s.handle("GET", "/api/v1/orgs/{org}/upcoming", OrgOwn, s.upcoming)
	s.handle("PUT", "/api/v1/orgs/{org}/alert-target", OrgOwn, s.setOrgTarget)
	s.handle("GET", "/api/v1/orgs/{org}/alert-target", OrgOwn, s.getOrgTarget)
	s.handle("DELETE", "/api/v1/orgs/{org}/alert-target", OrgOwn, s.clearOrgTarget)
}

func (s *Server) noticesEnabled() error {
	if s.notices == nil {
		return fmt.Errorf("change notices are not enabled on this server: %w", rollout.ErrPrecondition)
	}
	return nil
}

// orgOf is the organisation a request acts for: given, else the token's.
func orgOf(p Principal, given string) (string, error) {
	org := given
	if org == "" {
		org = p.Org
	}
	if org == "" {
		return "", fmt.Errorf("an admin acts on behalf of an organisation: give org: %w", rollout.ErrInvalid)
	}
	return org, p.mayActFor(org)
}

func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, p Principal) error {
	var req api.SubscribeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	org, err := orgOf(p, req.Org)
	if err != nil {
		return err
	}
	if err := s.noticesEnabled(); err != nil {
		return err
	}
	sub, err := s.notices.Subscribe(r.Context(), p.Actor(), rollout.Subscription{Org: org, Label: req.Label, URL: req.URL,
		Format: req.Format, OrgTarget: req.OrgTarget, Filters: req.Filters})
	if err != nil {
		return err
	}
	sub.URL = redactURL(sub.URL)
	writeJSON(w, http.StatusCreated, sub)
	return nil
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request, p Principal) error {
	q := r.URL.Query()
	org := q.Get("org")
	if org != "" || !p.isAdmin() {
		var err error
		if org, err = orgOf(p, org); err != nil {
			return err
		}
	}
	if err := s.noticesEnabled(); err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.notices.Subscriptions(r.Context(), rollout.SubscriptionFilter{Org: org, Label: q.Get("label")}, pg)
	if err != nil {
		return err
	}
	for i := range items {
		items[i].URL = redactURL(items[i].URL)
	}
	writeJSON(w, http.StatusOK, list(items, next))
	return nil
}

func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request, p Principal) error {
	org, err := orgOf(p, r.URL.Query().Get("org"))
	if err != nil {
		return err
	}
	if err := s.noticesEnabled(); err != nil {
		return err
	}
	if err := s.notices.Unsubscribe(r.Context(), p.Actor(), org, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) upcoming(w http.ResponseWriter, r *http.Request, p Principal) error {
	org := r.PathValue("org")
	if err := p.mayActFor(org); err != nil {
		return err
	}
	if err := s.noticesEnabled(); err != nil {
		return err
	}
	ns, err := s.notices.Upcoming(r.Context(), org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(ns, ""))
	return nil
}

// orgTargetFor checks that p may manage org's alert target and that
// notices are on.
func (s *Server) orgTargetFor(r *http.Request, p Principal) (string, error) {
	org := r.PathValue("org")
	if err := p.mayActFor(org); err != nil {
		return "", err
	}
	return org, s.noticesEnabled()
}

func (s *Server) setOrgTarget(w http.ResponseWriter, r *http.Request, p Principal) error {
	org, err := s.orgTargetFor(r, p)
	if err != nil {
		return err
	}
	var req api.OrgTargetRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.notices.SetOrgTarget(r.Context(), p.Actor(), rollout.OrgTarget{Org: org, URL: req.URL, Format: req.Format})
	if err != nil {
		return err
	}
	t.URL = redactURL(t.URL)
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) getOrgTarget(w http.ResponseWriter, r *http.Request, p Principal) error {
	org, err := s.orgTargetFor(r, p)
	if err != nil {
		return err
	}
	t, err := s.notices.OrgTarget(r.Context(), org)
	if err != nil {
		return err
	}
	t.URL = redactURL(t.URL)
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) clearOrgTarget(w http.ResponseWriter, r *http.Request, p Principal) error {
	org, err := s.orgTargetFor(r, p)
	if err != nil {
		return err
	}
	if err := s.notices.ClearOrgTarget(r.Context(), p.Actor(), org); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// redactURL shows a webhook URL as scheme and host: Slack's and Teams'
// carry their secret in the path.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<invalid url>"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		s += "/…"
	}
	return s
}
