package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// registerTelemetry adds the telemetry read endpoints. They are admin
// only: error texts are other organisations' logs.
func (s *Server) registerTelemetry() {
	s.handle("GET", "/api/v1/images/{label}/signatures", AdminOnly, s.listSignatures)
	s.handle("GET", "/api/v1/rollouts/{id}/telemetry", AdminOnly, s.ringTelemetry)
	s.handle("GET", "/api/v1/rollouts/{id}/analysis", AdminOnly, s.rolloutAnalysis)
}

func (s *Server) rolloutAnalysis(w http.ResponseWriter, r *http.Request, _ Principal) error {
	a, err := s.svc.Analysis(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// decodeEvents reads a POST /api/v1/events body: {"events": [...]}, with
// unknown fields refused, or a bare JSON array of events. Every error
// wraps rollout.ErrInvalid.
func decodeEvents(body []byte) ([]rollout.JobEvent, error) {
	var events []rollout.JobEvent
	var err error
	body = bytes.TrimSpace(body)
	// Both forms are read by the same strict decoder: an unknown field is
	// a runner's bug in either.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if len(body) > 0 && body[0] == '[' {
		err = dec.Decode(&events)
	} else {
		var req struct {
			Events []rollout.JobEvent `json:"events"`
		}
		err = dec.Decode(&req)
		events = req.Events
	}
	if err == nil && dec.More() {
		err = fmt.Errorf("more than one JSON value")
	}
	if err != nil {
		return nil, fmt.Errorf("events body: %v: %w", err, rollout.ErrInvalid)
	}
	if len(events) > rollout.MaxEventBatch {
		return nil, fmt.Errorf("%d events in one batch; send at most %d: %w", len(events), rollout.MaxEventBatch, rollout.ErrInvalid)
	}
	return events, nil
}

func (s *Server) listSignatures(w http.ResponseWriter, r *http.Request, _ Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	// The trend's window: a duration up to a week, 24h by default, 0 for
	// none.
	window := 24 * time.Hour
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > rollout.MaxTrendWindow {
			return fmt.Errorf("window %q: want a duration such as 24h, at most %s: %w", v, rollout.MaxTrendWindow, rollout.ErrInvalid)
		}
		window = d
	}
	items, next, err := s.svc.SignaturesWithTrend(r.Context(), r.PathValue("label"), r.URL.Query().Get("version"), window, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items, next))
	return nil
}

// ringTelemetry answers for ?ring=N, by default the ring the rollout is in.
func (s *Server) ringTelemetry(w http.ResponseWriter, r *http.Request, _ Principal) error {
	id := r.PathValue("id")
	var ring int
	if v := r.URL.Query().Get("ring"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("ring %q: want a ring index (0, 1, ...): %w", v, rollout.ErrInvalid)
		}
		ring = n
	} else {
		ro, err := s.svc.GetRollout(r.Context(), id)
		if err != nil {
			return err
		}
		ring = ro.Ring
	}
	t, err := s.svc.RingTelemetry(r.Context(), id, ring)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}
