package apiclient

var RetryAfter = retryAfter
