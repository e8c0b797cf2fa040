// Package tlscert is imagegate's TLS plumbing: the server's certificate
// pair, read from files and swapped atomically when reloaded (so a renewed
// certificate is served without a restart or a dropped connection), and the
// clients' trust in a private CA. It knows nothing of HTTP handlers, the
// domain or the stores.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// Pair is a certificate and key read from two PEM files. Its methods are
// safe for concurrent use: handshakes read the current pair while Reload
// replaces it.
type Pair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// Load reads the pair at certFile and keyFile.
func Load(certFile, keyFile string) (*Pair, error) {
	p := &Pair{certFile: certFile, keyFile: keyFile}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads both files again. On error the pair served so far stays in
// place: a half-written renewal must not take the server off the air.
func (p *Pair) Reload() error {
	c, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS pair %s, %s: %w (check that the files are PEM and the key matches the certificate)", p.certFile, p.keyFile, err)
	}
	p.cur.Store(&c)
	return nil
}

// Certificate returns the pair served now.
func (p *Pair) Certificate() *tls.Certificate { return p.cur.Load() }

// ServerConfig is a tls.Config serving the current pair, TLS 1.2 or
// newer. http.Server.ServeTLS adds HTTP/2 to it.
func (p *Pair) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return p.cur.Load(), nil
		},
	}
}

// ClientConfig is a client tls.Config trusting the system's roots and, when
// caFile is not empty, the PEM certificates in it (a private CA).
func ClientConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA certificate %s: %w", caFile, errNoPEM)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

var errNoPEM = errors.New("no PEM certificate in it (want a file with -----BEGIN CERTIFICATE-----)")
