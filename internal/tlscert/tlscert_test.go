package tlscert_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/testenv"
	"github.com/imagegate/imagegate/internal/tlscert"
)

func TestReloadServesNewPair(t *testing.T) {
	ca := testenv.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.Issue(t, 100, certFile, keyFile)
	pair, err := tlscert.Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// Served as imagegate serve does: ServeTLS adds HTTP/2.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{TLSConfig: pair.ServerConfig(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})}
	go hs.ServeTLS(ln, "", "")
	defer hs.Close()
	url := "https://" + ln.Addr().String()

	ccfg, err := tlscert.ClientConfig(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		t.Helper()
		// A fresh transport per call: a kept-alive connection would show
		// the certificate of its own handshake.
		tr := &http.Transport{TLSClientConfig: ccfg.Clone(), ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "HTTP/2.0" {
			t.Errorf("protocol %s, want HTTP/2.0", b)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	if got := serial(); got != "100" {
		t.Errorf("serial %s, want 100", got)
	}

	// A broken renewal keeps the old pair in service.
	if err := os.WriteFile(certFile, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pair.Reload(); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Errorf("Reload(broken) = %v, want an error naming %s", err, certFile)
	}
	if got := serial(); got != "100" {
		t.Errorf("after a failed reload: serial %s, want 100", got)
	}

	ca.Issue(t, 200, certFile, keyFile)
	if err := pair.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != "200" {
		t.Errorf("after reload: serial %s, want 200", got)
	}
}

func TestClientConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, file, want string }{
		{"absent", filepath.Join(dir, "absent.pem"), "no such file"},
		{"not PEM", notPEM, "no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tlscert.ClientConfig(tt.file); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ClientConfig(%s) = %v, want an error containing %q", tt.file, err, tt.want)
			}
		})
	}
	cfg, err := tlscert.ClientConfig("")
	if err != nil || cfg.RootCAs != nil || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("ClientConfig(\"\") = %+v, %v; want system roots, TLS 1.2+", cfg, err)
	}
}
