package main

import (
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestServeTimeouts: a client that starts a request and stalls is cut off
// after the configured readHeader timeout, not left holding a connection.
func TestServeTimeouts(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfg, []byte("timeouts: {readHeader: 300ms}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, []string{"IMAGEGATE_ADMIN_TOKEN=" + crashAdmin}, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	// Half a request: the headers never end.
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(make([]byte, 1))
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v (read header timeout 300ms)", took)
	}
	if err == nil && n > 0 {
		t.Fatalf("got an answer to half a request")
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("connection closed after %v, want about 300ms", took)
	}
}
