package main

import (
	"crypto/tls"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/testenv"
	"github.com/imagegate/imagegate/internal/tlscert"
)

// TestServeTLS serves HTTPS with a pair from a test CA, talks to it with
// the client commands trusting that CA (flag and environment), and replaces
// the pair under the running server: SIGHUP makes it serve the new one.
func TestServeTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.Issue(t, 100, certFile, keyFile)
	env := []string{"IMAGEGATE_ADMIN_TOKEN=" + crashAdmin, "IMAGEGATE_CA_CERT=" + ca.File}
	s := startServer(t, env, "-v", "--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("server URL %s, want https://", s.url)
	}

	client := func(env []string, args ...string) (string, error) {
		t.Helper()
		cmd := helperCommand(t, append([]string{"image", "list", "ubuntu-24.04", "-o", "json", "--server", s.url}, args...)...)
		cmd.Env = append(cmd.Env, append([]string{"IMAGEGATE_TOKEN=" + crashAdmin}, env...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := client([]string{"IMAGEGATE_CA_CERT=" + ca.File}); err != nil || !strings.Contains(out, `"items"`) {
		t.Errorf("with IMAGEGATE_CA_CERT: %v\n%s", err, out)
	}
	if out, err := client(nil, "--ca-cert", ca.File); err != nil || !strings.Contains(out, `"items"`) {
		t.Errorf("with --ca-cert: %v\n%s", err, out)
	}
	if out, err := client(nil); err == nil || !strings.Contains(out, "certificate") {
		t.Errorf("without the CA: %v, want a certificate error\n%s", err, out)
	}

	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := tlscert.ClientConfig(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	ccfg.NextProtos = []string{"h2", "http/1.1"}
	peer := func() (serial, proto string) {
		t.Helper()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host, ccfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		st := conn.ConnectionState()
		return st.PeerCertificates[0].SerialNumber.String(), st.NegotiatedProtocol
	}
	if serial, proto := peer(); serial != "100" || proto != "h2" {
		t.Errorf("serving serial %s over %q, want 100 over h2", serial, proto)
	}

	ca.Issue(t, 200, certFile, keyFile)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		serial, _ := peer()
		if serial == "200" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %s 10s after SIGHUP\n%s", serial, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(s.stderr.String(), "reloaded TLS pair") {
		t.Errorf("no reload in the log:\n%s", s.stderr)
	}
}
