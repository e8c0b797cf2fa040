package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/api"
)

// FailureClassifier is implemented by stores that can tell a failing
// dependency from a bug. Unavailable reports whether err, returned
// (possibly wrapped) by any of the store's methods, comes from the
// database being unreachable, restarting, read-only or out of space
// rather than from the request or the code, and names the cause in a few
// words a caller may see ("database unreachable"; never a DSN). The same
// request may succeed once the cause is gone. It must be cheap and safe
// for concurrent use.
type FailureClassifier interface {
	Unavailable(err error) (reason string, ok bool)
}

// ReadinessChecker is implemented by stores that know more about their
// readiness than that a read succeeds. Ready returns nil when the store
// can serve reads and take writes now, else an error saying what is wrong
// and what to do, for an operator (it is logged and its text served by
// /readyz). It must return within ctx.
type ReadinessChecker interface {
	Ready(ctx context.Context) error
}

// RetryAfterUnavailable is the Retry-After of a 503: long enough for a
// PostgreSQL restart or a pool reconnect, short enough that a runner does
// not stall its job for long.
const RetryAfterUnavailable = 2 * time.Second

// recentFailure is how long a write failed on a failing dependency keeps
// /readyz at 503 when no write succeeded since: a store can be readable
// while its writes fail (a full disk under SQLite's preallocated WAL, a
// PostgreSQL out of space), and a probe that reads cannot see that.
const recentFailure = 10 * time.Second

// unavailableError is a store error the store classified as a failing
// dependency; it is api.ErrUnavailable to the one status table.
type unavailableError struct {
	reason string
	err    error
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("%s: %v", e.reason, e.err)
}

func (e *unavailableError) Is(target error) bool { return target == api.ErrUnavailable }

func (e *unavailableError) Unwrap() error { return e.err }

// message is what the caller reads: the cause and when to retry, not
// the driver's text (host names, file paths).
func (e *unavailableError) message() string {
	return fmt.Sprintf("%s: the server cannot serve this now; retry in %d s", e.reason, int(RetryAfterUnavailable/time.Second))
}

// dependencyHealth remembers the last write that failed on a failing
// dependency until a later write succeeds.
type dependencyHealth struct {
	mu       sync.Mutex
	failedAt time.Time
	reason   string
}

func (h *dependencyHealth) failed(reason string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failedAt, h.reason = now, reason
}

func (h *dependencyHealth) succeeded() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failedAt, h.reason = time.Time{}, ""
}

// recent returns the reason of a failure within recentFailure of now.
func (h *dependencyHealth) recent(now time.Time) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failedAt.IsZero() || now.Sub(h.failedAt) > recentFailure {
		return "", false
	}
	return h.reason, true
}

// classifyDependency turns an error the store recognises as a failing
// dependency into an unavailableError; any other error is returned as it
// is. Only what would otherwise be a 500 is looked at: a refusal of the
// request stays a refusal.
func (s *Server) classifyDependency(err error) error {
	if errors.Is(err, api.ErrUnavailable) {
		return err
	}
	if status, _ := api.Classify(err); status != http.StatusInternalServerError {
		return err
	}
	fc, ok := s.st.(FailureClassifier)
	if !ok {
		return err
	}
	reason, ok := fc.Unavailable(err)
	if !ok {
		return err
	}
	return &unavailableError{reason: reason, err: err}
}

// noteWrite keeps dependencyHealth current from the requests that write
// (writeError records the failures): one that answered below 400 proves
// the store takes writes again.
func (s *Server) noteWrite(r *http.Request, status int) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && status < 400 {
		s.deps.succeeded()
	}
}

// readiness returns "" when the store is ready, else the reason /readyz
// serves (the store's classification, never its driver's text) and the
// error for the log.
func (s *Server) readiness(ctx context.Context) (string, error) {
	var err error
	if rc, ok := s.st.(ReadinessChecker); ok {
		err = rc.Ready(ctx)
	} else {
		_, err = s.st.Generation(ctx)
	}
	if err != nil {
		if ue := (*unavailableError)(nil); errors.As(s.classifyDependency(err), &ue) {
			return ue.reason, err
		}
		return "store unreachable", err
	}
	if reason, ok := s.deps.recent(s.now()); ok {
		return reason + ": writes failed", fmt.Errorf("%s: a write failed within the last %v and none succeeded since", reason, recentFailure)
	}
	return "", nil
}
