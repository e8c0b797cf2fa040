package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/api"
)

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = s.classifyDependency(err)
	status, code := api.Classify(err)
	msg := err.Error()
	if ue := (*unavailableError)(nil); errors.As(err, &ue) {
		// A failing dependency is the operator's to fix; the caller
		// learns the cause and when to try again.
		s.deps.failed(ue.reason, s.now())
		s.log.Warn("request failed on a failing dependency", "method", r.Method, "path", r.URL.Path, "reason", ue.reason, "err", ue.err)
		w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfterUnavailable/time.Second)))
		msg = ue.message()
	}
	if status == http.StatusInternalServerError {
		// The details of an internal error are for the operator's log,
		// not for the caller.
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error; the server log has the details"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imagegate"`)
	}
	if rl := (*rateLimited)(nil); errors.As(err, &rl) {
		w.Header().Set("Retry-After", rl.retryAfterHeader())
	}
	writeJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: strings.TrimSpace(msg)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"encode response"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
