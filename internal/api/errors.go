package api

import (
	"errors"
	"net/http"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Error codes of the JSON error body {"error": {"code", "message"}}. They
// are part of the API: clients (apiclient, the CLI) map them back to the
// rollout.Err* kinds.
const (
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodeInvalid         = "invalid"
	CodeForbidden       = "forbidden"
	CodePrecondition    = "precondition_failed"
	CodeUnauthenticated = "unauthenticated"
	CodeTooLarge        = "too_large"
	CodeRateLimited     = "rate_limited"
	CodeUnavailable     = "unavailable"
	// CodeKeyReused answers an Idempotency-Key sent again with a different
	// request (422); clients map it back to rollout.ErrKeyReused, which is
	// also a conflict.
	CodeKeyReused = "idempotency_key_reused"
	// CodeNotAllowed answers a method the path does not serve (405); no
	// error kind maps to it.
	CodeNotAllowed = "method_not_allowed"
	CodeInternal   = "internal"
)

// ErrUnauthenticated is a missing, malformed or unknown bearer token (401).
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrTooLarge is a request body over the route's limit (413).
var ErrTooLarge = errors.New("request body too large")

// ErrRateLimited is a token over its request rate (429, with Retry-After).
var ErrRateLimited = errors.New("rate limited")

// ErrUnavailable is a dependency of the server failing — its database
// unreachable, restarting or out of disk — rather than the request or a
// bug (503, with Retry-After): the same request may succeed later.
var ErrUnavailable = errors.New("unavailable")

// errorKinds is the one mapping from error kind to HTTP status and code.
var errorKinds = []struct {
	err    error
	status int
	code   string
}{
	{ErrUnauthenticated, http.StatusUnauthorized, CodeUnauthenticated},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, CodeTooLarge},
	{ErrRateLimited, http.StatusTooManyRequests, CodeRateLimited},
	{ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable},
	{rollout.ErrNotFound, http.StatusNotFound, CodeNotFound},
	// Before ErrConflict: ErrKeyReused is one, answered as the IETF draft
	// on Idempotency-Key says.
	{rollout.ErrKeyReused, http.StatusUnprocessableEntity, CodeKeyReused},
	{rollout.ErrConflict, http.StatusConflict, CodeConflict},
	{rollout.ErrInvalid, http.StatusBadRequest, CodeInvalid},
	{rollout.ErrForbidden, http.StatusForbidden, CodeForbidden},
	{rollout.ErrPrecondition, http.StatusPreconditionFailed, CodePrecondition},
}

// Classify returns the HTTP status and error code for err; anything that is
// not one of the known kinds is an internal error.
func Classify(err error) (status int, code string) {
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.status, k.code
		}
	}
	return http.StatusInternalServerError, CodeInternal
}

// KindOf maps an error code back to its sentinel error, for clients; nil
// for an unknown code.
func KindOf(code string) error {
	for _, k := range errorKinds {
		if k.code == code {
			return k.err
		}
	}
	return nil
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong; Message is meant for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
