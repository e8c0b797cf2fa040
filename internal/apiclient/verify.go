package apiclient

import (
	"context"
	"net/url"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// VerifyTargets lists the live versions a verify worker should pull.
func (c *Client) VerifyTargets(ctx context.Context) ([]rollout.VerifyTarget, error) {
	var out api.List[rollout.VerifyTarget]
	err := c.do(ctx, "GET", "/api/v1/verify/targets", nil, nil, &out)
	return out.Items, err
}

// RecordVerification posts what a worker found for one target.
func (c *Client) RecordVerification(ctx context.Context, rep rollout.VerifyReport) (rollout.Verification, error) {
	var out rollout.Verification
	err := c.do(ctx, "POST", "/api/v1/verifications", nil, rep, &out)
	return out, err
}

// Verifications lists the last verification of every live version
// (of label, when given).
func (c *Client) Verifications(ctx context.Context, label string) (api.List[rollout.Verification], error) {
	var out api.List[rollout.Verification]
	var q url.Values
	if label != "" {
		q = url.Values{"label": {label}}
	}
	err := c.do(ctx, "GET", "/api/v1/verifications", q, nil, &out)
	return out, err
}
