package apiclient_test

import (
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/apiclient"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{" 1 ", time.Second},
		{"-3", 0},
		{"99999999999", 24 * time.Hour},
		{"Wed, 02 Dec 2026 04:00:30 GMT", 30 * time.Second},
		{"Wed, 02 Dec 2026 03:59:00 GMT", 0},
		{"soon", 0},
	} {
		if got := apiclient.RetryAfter(tc.header, now); got != tc.want {
			t.Errorf("Retry-After %q = %v, want %v", tc.header, got, tc.want)
		}
	}
}
