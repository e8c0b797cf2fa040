package apiclient

var RetryAfter = retryAfter

// ReportBackoff lets a test retry without waiting.
var ReportBackoff = &reportBackoff
