package apiclient

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// NewIdempotencyKey returns a fresh key for one logical request: 128
// random bits as 26 base32 characters (crypto/rand.Text), which no other
// sender picks.
func NewIdempotencyKey() string {
	return rand.Text()
}

// reportBackoff are the waits before a report's retries (its length is
// how many); a Retry-After from the server, up to maxReportWait, replaces
// one.
var reportBackoff = []time.Duration{time.Second, 3 * time.Second}

const maxReportWait = 30 * time.Second

// Report sends a user report under a fresh Idempotency-Key
// (NewIdempotencyKey) with ReportWithKey's retries; the result says how
// many organisations reported its signature and whether it escalated.
func (c *Client) Report(ctx context.Context, req api.ReportRequest) (rollout.ReportResult, error) {
	return c.ReportWithKey(ctx, NewIdempotencyKey(), req)
}

// ReportWithKey sends a user report under the Idempotency-Key key, which
// names this one report within its organisation: the server stores it
// once however often it arrives, so a request that got no answer (a
// timeout, a dropped connection), a 5xx or a 429 is sent again under the
// same key, a few times. The answer to a retry of a report the server
// had stored has Replayed set. A key sent before with a different report
// is refused with rollout.ErrKeyReused (HTTP 422), never retried.
func (c *Client) ReportWithKey(ctx context.Context, key string, req api.ReportRequest) (rollout.ReportResult, error) {
	hdr := http.Header{"Idempotency-Key": {key}}
	for attempt := 0; ; attempt++ {
		var out rollout.ReportResult
		err := c.doHeader(ctx, "POST", "/api/v1/reports", nil, hdr, req, &out)
		if err == nil || attempt == len(reportBackoff) || ctx.Err() != nil {
			return out, err
		}
		wait, retry := retryable(err, reportBackoff[attempt])
		if !retry {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(wait):
		}
	}
}

// retryable says whether a report's err is worth sending again, and
// after how long: no answer, or the server failing or throttling.
func retryable(err error, backoff time.Duration) (time.Duration, bool) {
	var ae *Error
	switch {
	case errors.Is(err, ErrUnreachable):
		return backoff, true
	case !errors.As(err, &ae):
		return 0, false
	case ae.Status == http.StatusTooManyRequests || ae.Status >= 500:
		if ae.RetryAfter > 0 {
			return min(ae.RetryAfter, maxReportWait), true
		}
		return backoff, true
	}
	return 0, false
}

// Reports lists reports on label ("" = every label), newest first (admin).
func (c *Client) Reports(ctx context.Context, label string, p rollout.Page) (api.List[rollout.Report], error) {
	q := url.Values{}
	if label != "" {
		q.Set("label", label)
	}
	var out api.List[rollout.Report]
	err := c.do(ctx, "GET", "/api/v1/reports", pageQuery(q, p), nil, &out)
	return out, err
}
