package apiclient

import (
	"fmt"
	"net/http"
	"time"

	"github.com/imagegate/imagegate/internal/tlscert"
)

// HTTPClient is an http.Client for New: each request bounded by timeout
// (none when 0), HTTP/2 over TLS, trusting the system's roots and, when
// caFile is not empty, the PEM certificates in it (a server whose
// certificate a private CA signed).
func HTTPClient(caFile string, timeout time.Duration) (*http.Client, error) {
	cfg, err := tlscert.ClientConfig(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Setting TLSClientConfig alone would turn HTTP/2 off.
	tr.TLSClientConfig = cfg
	tr.ForceAttemptHTTP2 = true
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}
