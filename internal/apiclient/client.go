// Package apiclient is the HTTP client of imagegate's control-plane API,
// used by the CLI. Errors the server reports come back as *Error, which
// unwraps to the rollout.Err* kind of its code, so callers can use
// errors.Is(err, rollout.ErrNotFound).
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// Client talks to one imagegate server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// New returns a client for the server at baseURL (such as
// http://127.0.0.1:8080) authenticating with token; hc is
// http.DefaultClient when nil.
func New(baseURL, token string, hc *http.Client) (*Client, error) {
	if baseURL == "" {
		return nil, errors.New("no server given: use --server URL or set IMAGEGATE_SERVER")
	}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want a URL such as http://127.0.0.1:8080", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, token: token, hc: hc}, nil
}

// ErrUnreachable is wrapped by errors of requests that got no answer: the
// server is not running, the URL is wrong, the network failed or timed out.
var ErrUnreachable = errors.New("cannot reach the server")

// Error is an error response of the server.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the server's Retry-After on a 429 or 503 (seconds or
	// an HTTP date), zero when it gave none: how long a retry should wait.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("server: %s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// Unwrap returns the rollout.Err* kind of the code (or
// api.ErrUnauthenticated), nil for internal errors.
func (e *Error) Unwrap() error { return api.KindOf(e.Code) }

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	return c.doHeader(ctx, method, path, q, nil, in, out)
}

// doHeader is do with extra request headers.
func (c *Client) doHeader(ctx context.Context, method, path string, q url.Values, hdr http.Header, in, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// url.Error repeats the method and URL said here already.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w: %w (is the server running and --server right?)", method, u.Redacted(), ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &Error{Status: resp.StatusCode, Code: "http", Message: fmt.Sprintf("%s %s: %s", method, path, strings.TrimSpace(string(b)))}
		var eb api.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return e
	}
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

func pageQuery(q url.Values, p rollout.Page) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.After != "" {
		q.Set("after", p.After)
	}
	return q
}

func seg(s string) string { return url.PathEscape(s) }

// CreateToken creates an API token; the returned Token is the secret.
func (c *Client) CreateToken(ctx context.Context, name, role string) (api.CreateTokenResponse, error) {
	var out api.CreateTokenResponse
	err := c.do(ctx, "POST", "/api/v1/tokens", nil, api.CreateTokenRequest{Name: name, Role: role}, &out)
	return out, err
}

// NewToken creates an API token as req asks (an expiry, when set); the
// returned Token is the secret.
func (c *Client) NewToken(ctx context.Context, req api.CreateTokenRequest) (api.CreateTokenResponse, error) {
	var out api.CreateTokenResponse
	err := c.do(ctx, "POST", "/api/v1/tokens", nil, req, &out)
	return out, err
}

// Tokens lists API tokens (never their secrets).
func (c *Client) Tokens(ctx context.Context, p rollout.Page) (api.List[rollout.Token], error) {
	var out api.List[rollout.Token]
	err := c.do(ctx, "GET", "/api/v1/tokens", pageQuery(nil, p), nil, &out)
	return out, err
}

// RevokeToken revokes token id; revoking a revoked token returns it
// unchanged.
func (c *Client) RevokeToken(ctx context.Context, id, reason string) (rollout.Token, error) {
	var out rollout.Token
	err := c.do(ctx, "DELETE", "/api/v1/tokens/"+seg(id), nil, api.ReasonRequest{Reason: reason}, &out)
	return out, err
}

// RotateToken replaces token id by a new one of the same name and role,
// revoking the old; the returned Token is the new secret.
func (c *Client) RotateToken(ctx context.Context, id, reason string) (api.CreateTokenResponse, error) {
	var out api.CreateTokenResponse
	err := c.do(ctx, "POST", "/api/v1/tokens/"+seg(id)+"/rotate", nil, api.ReasonRequest{Reason: reason}, &out)
	return out, err
}

// Images lists images.
func (c *Client) Images(ctx context.Context, p rollout.Page) (api.List[rollout.Image], error) {
	var out api.List[rollout.Image]
	err := c.do(ctx, "GET", "/api/v1/images", pageQuery(nil, p), nil, &out)
	return out, err
}

// PushVersion registers version of label with its evidence (raw JSON).
func (c *Client) PushVersion(ctx context.Context, label string, req api.PushVersionRequest) (rollout.Version, error) {
	var out rollout.Version
	err := c.do(ctx, "POST", "/api/v1/images/"+seg(label)+"/versions", nil, req, &out)
	return out, err
}

// Versions lists versions of label, newest first.
func (c *Client) Versions(ctx context.Context, label string, p rollout.Page) (api.List[rollout.Version], error) {
	var out api.List[rollout.Version]
	err := c.do(ctx, "GET", "/api/v1/images/"+seg(label)+"/versions", pageQuery(nil, p), nil, &out)
	return out, err
}

// Version returns one version with its blobs.
func (c *Client) Version(ctx context.Context, label, version string) (rollout.Version, error) {
	var out rollout.Version
	err := c.do(ctx, "GET", "/api/v1/images/"+seg(label)+"/versions/"+seg(version), nil, nil, &out)
	return out, err
}

// RevokeVersion revokes a version for reason.
func (c *Client) RevokeVersion(ctx context.Context, label, version, reason string) (rollout.Version, error) {
	var out rollout.Version
	err := c.do(ctx, "POST", "/api/v1/images/"+seg(label)+"/versions/"+seg(version)+"/revoke", nil, api.ReasonRequest{Reason: reason}, &out)
	return out, err
}

func ringsPath(label string) string {
	if label == "" {
		return "/api/v1/rings"
	}
	return "/api/v1/images/" + seg(label) + "/rings"
}

// Rings returns the ring plan of label ("" = global).
func (c *Client) Rings(ctx context.Context, label string) (api.Rings, error) {
	var out api.Rings
	err := c.do(ctx, "GET", ringsPath(label), nil, nil, &out)
	return out, err
}

// SetRings replaces the ring plan of label ("" = global).
func (c *Client) SetRings(ctx context.Context, label string, rings []rollout.Ring) error {
	return c.do(ctx, "PUT", ringsPath(label), nil, api.Rings{Rings: rings}, nil)
}

// Status is the observed status of label's rollout.
func (c *Client) Status(ctx context.Context, label string) (rollout.LabelStatus, error) {
	var out rollout.LabelStatus
	err := c.do(ctx, "GET", "/api/v1/images/"+seg(label)+"/status", nil, nil, &out)
	return out, err
}

// StartRollout starts a rollout.
func (c *Client) StartRollout(ctx context.Context, req api.StartRolloutRequest) (rollout.Rollout, error) {
	var out rollout.Rollout
	err := c.do(ctx, "POST", "/api/v1/rollouts", nil, req, &out)
	return out, err
}

// Rollout returns one rollout.
func (c *Client) Rollout(ctx context.Context, id string) (rollout.Rollout, error) {
	var out rollout.Rollout
	err := c.do(ctx, "GET", "/api/v1/rollouts/"+seg(id), nil, nil, &out)
	return out, err
}

// ListRollouts lists rollouts of label ("" = all) in states (none = all).
func (c *Client) ListRollouts(ctx context.Context, label string, states []string, p rollout.Page) (api.List[rollout.Rollout], error) {
	q := url.Values{}
	if label != "" {
		q.Set("label", label)
	}
	if len(states) > 0 {
		q.Set("state", strings.Join(states, ","))
	}
	var out api.List[rollout.Rollout]
	err := c.do(ctx, "GET", "/api/v1/rollouts", pageQuery(q, p), nil, &out)
	return out, err
}

// Rollout actions.
const (
	ActionPause    = "pause"
	ActionResume   = "resume"
	ActionPromote  = "promote"
	ActionHalt     = "halt"
	ActionRollback = "rollback"
)

// Act pauses, resumes, promotes, halts or rolls back rollout id.
func (c *Client) Act(ctx context.Context, id, action, reason string) (rollout.Rollout, error) {
	var out rollout.Rollout
	err := c.do(ctx, "POST", "/api/v1/rollouts/"+seg(id)+"/"+seg(action), nil, api.ReasonRequest{Reason: reason}, &out)
	return out, err
}

// SetPin pins org's label.
func (c *Client) SetPin(ctx context.Context, org, label string, req api.SetPinRequest) (rollout.Pin, error) {
	var out rollout.Pin
	err := c.do(ctx, "PUT", "/api/v1/pins/"+seg(org)+"/"+seg(label), nil, req, &out)
	return out, err
}

// ClearPin removes org's pin of label.
func (c *Client) ClearPin(ctx context.Context, org, label string) error {
	return c.do(ctx, "DELETE", "/api/v1/pins/"+seg(org)+"/"+seg(label), nil, nil, nil)
}

// ListPins lists pins in force, filtered by org and label when given.
func (c *Client) ListPins(ctx context.Context, org, label string, p rollout.Page) (api.List[rollout.PinView], error) {
	q := url.Values{}
	if org != "" {
		q.Set("org", org)
	}
	if label != "" {
		q.Set("label", label)
	}
	var out api.List[rollout.PinView]
	err := c.do(ctx, "GET", "/api/v1/pins", pageQuery(q, p), nil, &out)
	return out, err
}

// Resolve asks which version a job of org gets for label; runID may be "".
func (c *Client) Resolve(ctx context.Context, org, label, runID string) (rollout.Resolution, error) {
	q := url.Values{"org": {org}, "label": {label}}
	if runID != "" {
		q.Set("run", runID)
	}
	var out rollout.Resolution
	err := c.do(ctx, "GET", "/api/v1/resolve", q, nil, &out)
	return out, err
}

// PostEvents stores a batch of job events; it returns once they are durable.
func (c *Client) PostEvents(ctx context.Context, events []rollout.JobEvent) (api.EventsResponse, error) {
	var out api.EventsResponse
	err := c.do(ctx, "POST", "/api/v1/events", nil, api.EventsRequest{Events: events}, &out)
	return out, err
}

// Audit lists audit entries, newest first.
func (c *Client) Audit(ctx context.Context, f rollout.AuditFilter, p rollout.Page) (api.List[rollout.AuditEntry], error) {
	q := url.Values{}
	for k, v := range map[string]string{"actor": f.Actor, "action": f.Action, "subject": f.SubjectPrefix} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	var out api.List[rollout.AuditEntry]
	err := c.do(ctx, "GET", "/api/v1/audit", pageQuery(q, p), nil, &out)
	return out, err
}

// Ready reports whether the server answers /readyz with 200.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, "GET", "/readyz", nil, nil, nil)
}

// Analysis returns the telemetry decision of every ring rollout id entered
// (GET /api/v1/rollouts/{id}/analysis).
func (c *Client) Analysis(ctx context.Context, id string) (rollout.RolloutAnalysis, error) {
	var out rollout.RolloutAnalysis
	err := c.do(ctx, "GET", "/api/v1/rollouts/"+seg(id)+"/analysis", nil, nil, &out)
	return out, err
}

// Signatures lists the error signatures seen on label (of version, when
// not "") with their counts and their trend over window (the server's
// default, 24h, when 0) (GET /api/v1/images/{label}/signatures).
func (c *Client) Signatures(ctx context.Context, label, version string, window time.Duration, p rollout.Page) (api.List[rollout.Signature], error) {
	q := url.Values{}
	if version != "" {
		q.Set("version", version)
	}
	if window > 0 {
		q.Set("window", window.String())
	}
	var out api.List[rollout.Signature]
	err := c.do(ctx, "GET", "/api/v1/images/"+seg(label)+"/signatures", pageQuery(q, p), nil, &out)
	return out, err
}

// retryAfter reads a Retry-After header (RFC 9110 §10.2.3): delay-seconds
// or an HTTP date; zero when absent, malformed or in the past.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil {
		return time.Duration(min(max(secs, 0), 86400)) * time.Second // no overflow
	}
	if at, err := http.ParseTime(h); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
