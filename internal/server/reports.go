package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// Reports is what the report endpoints call: *rollout.Reports.
type Reports interface {
	// Report stores r from actor and escalates when the policy says so;
	// errors wrap the rollout.Err* kinds.
	Report(ctx context.Context, actor string, r rollout.Report) (rollout.ReportResult, error)
	List(ctx context.Context, f rollout.ReportFilter, p rollout.Page) ([]rollout.Report, string, error)
}

// MaxReportBody bounds a report's request body: the text's limit
// (rollout.MaxReportText) with room for JSON escapes of every byte of it.
const MaxReportBody = 8*rollout.MaxReportText + 4<<10

// registerReports adds the user-report endpoints: any organisation
// reports for itself (an admin on an organisation's behalf); reading the
// reports, other organisations' logs, is for admins.
func (s *Server) registerReports() {
	s.handle("POST", "/api/v1/reports", OrgOwn, s.report)
	s.handle("GET", "/api/v1/reports", AdminOnly, s.listReports)
}

// decodeReport reads a POST /api/v1/reports body strictly: one JSON
// object, unknown fields refused. Every error wraps rollout.ErrInvalid;
// the fields are checked by rollout.CheckReport.
func decodeReport(body []byte) (api.ReportRequest, error) {
	var req api.ReportRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("report body: %v: %w", err, rollout.ErrInvalid)
	}
	if dec.More() {
		return req, fmt.Errorf("report body: more than one JSON value: %w", rollout.ErrInvalid)
	}
	return req, nil
}

// report stores a report; under an Idempotency-Key its org sent before
// with the same report it answers that report, 200 instead of 201, with
// Idempotent-Replayed: true (Stripe's header), and stores, counts and
// escalates nothing anew (rollout.Reports.Report).
func (s *Server) report(w http.ResponseWriter, r *http.Request, p Principal) error {
	if s.reports == nil {
		return fmt.Errorf("user reports are not enabled on this server: %w", rollout.ErrPrecondition)
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReportBody))
	if err != nil {
		return bodyError(err)
	}
	req, err := decodeReport(body)
	if err != nil {
		return err
	}
	org := req.Org
	switch {
	case org == "" && p.Org != "":
		org = p.Org
	case org == "":
		return fmt.Errorf("report: an admin reports on behalf of an organisation: give \"org\": %w", rollout.ErrInvalid)
	}
	if err := p.mayActFor(org); err != nil {
		return err
	}
	res, err := s.reports.Report(r.Context(), p.Actor(), rollout.Report{Org: org, Label: req.Label, Version: req.Version, JobID: req.JobID, Text: req.Text,
		IdempotencyKey: key})
	if err != nil {
		return err
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request, _ Principal) error {
	if s.reports == nil {
		return fmt.Errorf("user reports are not enabled on this server: %w", rollout.ErrPrecondition)
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	items, next, err := s.reports.List(r.Context(), rollout.ReportFilter{Label: q.Get("label"), Signature: q.Get("signature")}, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items, next))
	return nil
}
