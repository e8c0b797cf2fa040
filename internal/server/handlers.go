package server

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// openAPIYAML is hand-written as YAML, which people can read and review;
// it is served as JSON.
//
//go:embed openapi.yaml
var openAPIYAML []byte

var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return json.MarshalIndent(doc, "", "  ")
})

// OpenAPI returns the OpenAPI 3 document served at /api/v1/openapi.json.
func OpenAPI() ([]byte, error) {
	b, err := openAPIJSON()
	return bytes.Clone(b), err
}

func (s *Server) register() {
	s.handle("GET", "/healthz", Public, s.healthz)
	s.handle("GET", "/readyz", Public, s.readyz)
	s.handle("GET", "/metrics", Public, s.metricsHandler)
	s.handle("GET", "/api/v1/openapi.json", Public, s.openapi)

	s.handle("POST", "/api/v1/tokens", AdminOnly, s.createToken)
	s.registerTokens()

	s.handle("GET", "/api/v1/images", OrgRead, s.listImages)
	s.handle("GET", "/api/v1/images/{label}/versions", OrgRead, s.listVersions)
	s.handle("POST", "/api/v1/images/{label}/versions", AdminOnly, s.pushVersion)
	s.handle("GET", "/api/v1/images/{label}/versions/{version}", OrgRead, s.getVersion)
	s.handle("POST", "/api/v1/images/{label}/versions/{version}/revoke", AdminOnly, s.revokeVersion)
	s.handle("GET", "/api/v1/images/{label}/rings", AdminOnly, s.getRings)
	s.handle("PUT", "/api/v1/images/{label}/rings", AdminOnly, s.putRings)
	s.handle("GET", "/api/v1/rings", AdminOnly, s.getRings)
	s.handle("PUT", "/api/v1/rings", AdminOnly, s.putRings)
	s.handle("GET", "/api/v1/images/{label}/status", AdminOnly, s.status)

	s.handle("GET", "/api/v1/rollouts", AdminOnly, s.listRollouts)
	s.handle("POST", "/api/v1/rollouts", AdminOnly, s.startRollout)
	s.handle("GET", "/api/v1/rollouts/{id}", AdminOnly, s.getRollout)
	for _, a := range []struct {
		name string
		fn   func(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)
	}{
		{"pause", s.svc.Pause}, {"resume", s.svc.Resume}, {"promote", s.svc.Promote},
		{"halt", s.svc.Halt}, {"rollback", s.svc.Rollback},
	} {
		s.handle("POST", "/api/v1/rollouts/{id}/"+a.name, AdminOnly, s.rolloutAction(a.fn))
	}

	s.handle("GET", "/api/v1/pins", OrgOwn, s.listPins)
	s.handle("PUT", "/api/v1/pins/{org}/{label}", OrgOwn, s.setPin)
	s.handle("DELETE", "/api/v1/pins/{org}/{label}", OrgOwn, s.clearPin)

	s.routes = append(s.routes, Route{Method: "GET", Path: "/api/v1/resolve", Access: ResolveAny})
	s.mux.HandleFunc("GET /api/v1/resolve", s.resolve)
	s.handle("POST", "/api/v1/events", RunnerWrite, s.events)
	s.handle("GET", "/api/v1/audit", AdminOnly, s.audit)
	s.registerTelemetry()
	s.registerReports()
	s.registerVerify()
	s.registerNotices()
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 once the store answers and takes writes: stores
// apply their migrations before Open returns, so a reachable store is a
// migrated one; see readiness for what else makes it 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ Principal) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if reason, err := s.readiness(ctx); err != nil {
		s.log.Warn("not ready", "reason", reason, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request, _ Principal) error {
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request, _ Principal) error {
	b, err := openAPIJSON()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
	return nil
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request, _ Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.svc.Images(r.Context(), pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items, next))
	return nil
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, _ Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.svc.Versions(r.Context(), r.PathValue("label"), pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items, next))
	return nil
}

func (s *Server) pushVersion(w http.ResponseWriter, r *http.Request, p Principal) error {
	var req api.PushVersionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	v, err := s.svc.PushVersion(r.Context(), p.Actor(), rollout.Version{
		Label: r.PathValue("label"), Version: req.Version, Snapshot: req.Snapshot, CheckReport: req.CheckReport, Image: req.Image,
	})
	if err != nil {
		return err
	}
	v.Snapshot, v.CheckReport = nil, nil
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request, _ Principal) error {
	v, err := s.svc.Version(r.Context(), r.PathValue("label"), r.PathValue("version"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// decodeReason accepts an empty body as no reason.
func decodeReason(r *http.Request) (string, error) {
	var req api.ReasonRequest
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return "", bodyError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", fmt.Errorf("request body: %v: %w", err, rollout.ErrInvalid)
	}
	return req.Reason, nil
}

func (s *Server) revokeVersion(w http.ResponseWriter, r *http.Request, p Principal) error {
	reason, err := decodeReason(r)
	if err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("revoking a version needs a reason: %w", rollout.ErrInvalid)
	}
	label, version := r.PathValue("label"), r.PathValue("version")
	if err := s.svc.RevokeVersion(r.Context(), p.Actor(), label, version, reason); err != nil {
		return err
	}
	v, err := s.svc.Version(r.Context(), label, version)
	if err != nil {
		return err
	}
	v.Snapshot, v.CheckReport = nil, nil
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) getRings(w http.ResponseWriter, r *http.Request, _ Principal) error {
	label := r.PathValue("label")
	rings, err := s.st.GetRings(r.Context(), label)
	if err != nil {
		return fmt.Errorf("rings of %q: %w", label, err)
	}
	writeJSON(w, http.StatusOK, api.Rings{Label: label, Rings: rings})
	return nil
}

func (s *Server) putRings(w http.ResponseWriter, r *http.Request, p Principal) error {
	var req api.Rings
	if err := decode(r, &req); err != nil {
		return err
	}
	label := r.PathValue("label")
	if err := s.svc.SetRings(r.Context(), p.Actor(), label, req.Rings); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Rings{Label: label, Rings: req.Rings})
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ Principal) error {
	st, err := s.svc.Status(r.Context(), r.PathValue("label"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request, _ Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var states []rollout.State
	for _, st := range q["state"] {
		for _, one := range strings.Split(st, ",") {
			if one = strings.TrimSpace(one); one != "" {
				states = append(states, rollout.State(one))
			}
		}
	}
	items, next, err := s.svc.ListRollouts(r.Context(), q.Get("label"), states, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items, next))
	return nil
}

func (s *Server) startRollout(w http.ResponseWriter, r *http.Request, p Principal) error {
	var req api.StartRolloutRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	sr := rollout.StartRequest{Label: req.Label, Version: req.Version, Expedited: req.Expedited, Force: req.Force, ForceReason: req.ForceReason, AutoRollback: req.AutoRollback,
		Reason: req.Reason}
	if len(req.BakeTimes) > 0 {
		sr.BakeTimes = make(map[string]time.Duration, len(req.BakeTimes))
		for ring, d := range req.BakeTimes {
			dur, err := time.ParseDuration(d)
			if err != nil || dur < 0 {
				return fmt.Errorf("bake time of ring %q: %q is not a duration such as 30m: %w", ring, d, rollout.ErrInvalid)
			}
			sr.BakeTimes[ring] = dur
		}
	}
	ro, err := s.svc.StartRollout(r.Context(), p.Actor(), sr)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, ro)
	return nil
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request, _ Principal) error {
	ro, err := s.svc.GetRollout(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ro)
	return nil
}

func (s *Server) rolloutAction(fn func(ctx context.Context, actor, id, reason string) (rollout.Rollout, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		reason, err := decodeReason(r)
		if err != nil {
			return err
		}
		ro, err := fn(r.Context(), p.Actor(), r.PathValue("id"), reason)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, ro)
		return nil
	}
}

func (s *Server) listPins(w http.ResponseWriter, r *http.Request, p Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	org := q.Get("org")
	if p.Org != "" && org == "" {
		org = p.Org // an org token sees its own pins by default
	}
	if org == "" && !p.isAdmin() {
		return fmt.Errorf("list pins: give ?org=: %w", rollout.ErrInvalid)
	}
	if org != "" {
		if err := p.mayActFor(org); err != nil {
			return err
		}
	}
	items, next, err := s.svc.ListPins(r.Context(), org, q.Get("label"), pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items, next))
	return nil
}

func (s *Server) setPin(w http.ResponseWriter, r *http.Request, p Principal) error {
	org, label := r.PathValue("org"), r.PathValue("label")
	if err := p.mayActFor(org); err != nil {
		return err
	}
	var req api.SetPinRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	owner := req.Owner
	if owner == "" {
		owner = p.Owner()
	}
	pin, err := s.svc.SetPin(r.Context(), p.Actor(), rollout.Pin{
		Org: org, Label: label, Version: req.Version, Owner: owner, Reason: req.Reason,
		ExpiresAt: req.ExpiresAt, OverrideRevoked: req.OverrideRevoked,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pin)
	return nil
}

func (s *Server) clearPin(w http.ResponseWriter, r *http.Request, p Principal) error {
	org, label := r.PathValue("org"), r.PathValue("label")
	if err := p.mayActFor(org); err != nil {
		return err
	}
	if err := s.svc.ClearPin(r.Context(), p.Actor(), org, label); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) events(w http.ResponseWriter, r *http.Request, _ Principal) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	var req api.EventsRequest
	if req.Events, err = decodeEvents(body); err != nil {
		return err
	}
	s.metrics.eventsReceived.Add(float64(len(req.Events)))
	n, err := s.svc.IngestEvents(r.Context(), req.Events)
	if err != nil {
		s.metrics.eventBatches.WithLabelValues("error").Inc()
		return err
	}
	s.metrics.eventBatches.WithLabelValues("stored").Inc()
	s.metrics.eventsIngested.Add(float64(n))
	writeJSON(w, http.StatusOK, api.EventsResponse{Received: len(req.Events), New: n})
	return nil
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, _ Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := rollout.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), SubjectPrefix: q.Get("subject")}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			ts, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z: %w", t.name, v, rollout.ErrInvalid)
			}
			*t.dst = ts
		}
	}
	items, next, err := s.svc.Audit(r.Context(), f, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items, next))
	return nil
}
