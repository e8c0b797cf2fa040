package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/imagegate/imagegate/internal/api"
)

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := api.Classify(err)
	msg := err.Error()
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
