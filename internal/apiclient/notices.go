package apiclient

import (
	"context"

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
