package api

// SubscribeRequest is the body of POST /api/v1/subscriptions; Org is
// implied by an org token.
type SubscribeRequest struct {
	Org       string   `json:"org,omitempty"`
	Label     string   `json:"label"`
	URL       string   `json:"url,omitempty"`
	Format    string   `json:"format,omitempty"`
	OrgTarget bool     `json:"orgTarget,omitempty"`
	Filters   []string `json:"filters,omitempty"`
}

// OrgTargetRequest is the body of PUT /api/v1/orgs/{org}/alert-target:
// the webhook the organisation's subscriptions with orgTarget are sent to.
type OrgTargetRequest struct {
	URL    string `json:"url"`
	Format string `json:"format,omitempty"`
}
