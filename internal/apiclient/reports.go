package apiclient

import (
	"context"
	"net/url"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// Report sends a user report; the result says how many organisations
// reported its signature and whether it escalated.
func (c *Client) Report(ctx context.Context, req api.ReportRequest) (rollout.ReportResult, error) {
	var out rollout.ReportResult
	err := c.do(ctx, "POST", "/api/v1/reports", nil, req, &out)
	return out, err
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
