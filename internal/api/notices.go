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
