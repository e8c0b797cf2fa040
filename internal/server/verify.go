package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Verify is what the re-verification endpoints call: *rollout.Verifications.
type Verify interface {
	// Targets lists the live versions with an image reference.
	Targets(ctx context.Context) ([]rollout.VerifyTarget, error)
	// Record judges a worker's report and stores the result.
	Record(ctx context.Context, actor string, rep rollout.VerifyReport) (rollout.Verification, error)
	// List returns the last verification of every live version.
	List(ctx context.Context) ([]rollout.Verification, error)
}

// registerVerify adds re-verification: a worker (runner or admin token)
// reads what to verify and posts what it found; results are for admins.
func (s *Server) registerVerify() {
	s.handle("GET", "/api/v1/verify/targets", RunnerWrite, s.verifyTargets)
	s.handle("POST", "/api/v1/verifications", RunnerWrite, s.recordVerification)
	s.handle("GET", "/api/v1/verifications", AdminOnly, s.listVerifications)
}

func (s *Server) verifyEnabled() error {
	if s.verify == nil {
		return fmt.Errorf("re-verification is not enabled on this server: %w", rollout.ErrPrecondition)
	}
	return nil
}

func (s *Server) verifyTargets(w http.ResponseWriter, r *http.Request, _ Principal) error {
	if err := s.verifyEnabled(); err != nil {
		return err
	}
	ts, err := s.verify.Targets(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(ts, ""))
	return nil
}

func (s *Server) recordVerification(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := s.verifyEnabled(); err != nil {
		return err
	}
	var rep rollout.VerifyReport
	if err := decode(r, &rep); err != nil {
		return err
	}
	if rep.Label == "" || rep.Version == "" {
		return fmt.Errorf("verification: label and version are required: %w", rollout.ErrInvalid)
	}
	v, err := s.verify.Record(r.Context(), p.Actor(), rep)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) listVerifications(w http.ResponseWriter, r *http.Request, _ Principal) error {
	if err := s.verifyEnabled(); err != nil {
		return err
	}
	vs, err := s.verify.List(r.Context())
	if err != nil {
		return err
	}
	label := r.URL.Query().Get("label")
	out := vs[:0:0]
	for _, v := range vs {
		if label == "" || v.Label == label {
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, list(out, ""))
	return nil
}

var verifyAgeDesc = prometheus.NewDesc("imagegate_verification_age_seconds",
	"Seconds since each live version was last pulled and scanned by imagegate verify (since it was pushed, when never).",
	[]string{"label", "version"}, nil)

// verifyAges asks for the live versions at scrape time, so every replica
// reports the same.
type verifyAges struct {
	v   Verify
	now func() time.Time
}

func registerVerifyMetrics(reg *prometheus.Registry, v Verify, now func() time.Time) error {
	if v == nil {
		return nil
	}
	if err := reg.Register(&verifyAges{v: v, now: now}); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	return nil
}

func (c *verifyAges) Describe(ch chan<- *prometheus.Desc) { ch <- verifyAgeDesc }

func (c *verifyAges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	vs, err := c.v.List(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(verifyAgeDesc, fmt.Errorf("list verifications: %w", err))
		return
	}
	now := c.now()
	for _, v := range vs {
		since := v.LastSuccessAt
		if since.IsZero() {
			since = v.PushedAt
		}
		if since.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(verifyAgeDesc, prometheus.GaugeValue, now.Sub(since).Seconds(), v.Label, v.Version)
	}
}
