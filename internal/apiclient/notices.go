package apiclient

import (
	"context"
	"net/url"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// Subscribe subscribes an organisation to a label's change notices.
func (c *Client) Subscribe(ctx context.Context, req api.SubscribeRequest) (rollout.Subscription, error) {
	var out rollout.Subscription
	err := c.do(ctx, "POST", "/api/v1/subscriptions", nil, req, &out)
	return out, err
}

// Upcoming lists what org's subscriptions are told about rollouts under way.
func (c *Client) Upcoming(ctx context.Context, org string) ([]rollout.ChangeNotice, error) {
	var out api.List[rollout.ChangeNotice]
	err := c.do(ctx, "GET", "/api/v1/orgs/"+seg(org)+"/upcoming", nil, nil, &out)
	return out.Items, err
}

// SetOrgTarget sets org's alert target (the URL comes back redacted).
func (c *Client) SetOrgTarget(ctx context.Context, org string, req api.OrgTargetRequest) (rollout.OrgTarget, error) {
	var out rollout.OrgTarget
	err := c.do(ctx, "PUT", "/api/v1/orgs/"+seg(org)+"/alert-target", nil, req, &out)
	return out, err
}

// OrgTarget returns org's alert target, its URL redacted; ErrNotFound
// when it has none.
func (c *Client) OrgTarget(ctx context.Context, org string) (rollout.OrgTarget, error) {
	var out rollout.OrgTarget
	err := c.do(ctx, "GET", "/api/v1/orgs/"+seg(org)+"/alert-target", nil, nil, &out)
	return out, err
}

// ClearOrgTarget removes org's alert target.
func (c *Client) ClearOrgTarget(ctx context.Context, org string) error {
	return c.do(ctx, "DELETE", "/api/v1/orgs/"+seg(org)+"/alert-target", nil, nil, nil)
}

// Subscriptions pages through subscriptions (an org token sees its own;
// org and label narrow, "" for all).
func (c *Client) Subscriptions(ctx context.Context, org, label string, p rollout.Page) (api.List[rollout.Subscription], error) {
	q := url.Values{}
	if org != "" {
		q.Set("org", org)
	}
	if label != "" {
		q.Set("label", label)
	}
	var out api.List[rollout.Subscription]
	err := c.do(ctx, "GET", "/api/v1/subscriptions", pageQuery(q, p), nil, &out)
	return out, err
}

// Unsubscribe deletes subscription id of org ("" for an org token's own).
func (c *Client) Unsubscribe(ctx context.Context, org, id string) error {
	var q url.Values
	if org != "" {
		q = url.Values{"org": {org}}
	}
	return c.do(ctx, "DELETE", "/api/v1/subscriptions/"+seg(id), q, nil, nil)
}
