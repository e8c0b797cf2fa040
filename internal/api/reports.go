package api

// ReportRequest is the body of POST /api/v1/reports: an organisation
// reporting a problem with an image. The response is a
// rollout.ReportResult.
type ReportRequest struct {
	Label string `json:"label"`
	// Text is the error as the user saw it: best the failed step's last
	// log lines or the error line; prose is accepted but matches no job's
	// signature (see the OpenAPI document).
	Text    string `json:"text"`
	JobID   string `json:"jobId,omitempty"`
	Version string `json:"version,omitempty"`
	// Org is the organisation reporting: required from an admin (on its
	// behalf); an org token may leave it out or name its own.
	Org string `json:"org,omitempty"`
}
