package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRestartTakesOwnLease: a replica killed with -9 and restarted leads
// again at once, not after the 30s lease TTL — on SQLite by its database
// file, on PostgreSQL without controller.replica by its host and listening
// address; while it runs, a second live process does not share its name
// and so cannot lead beside it.
func TestRestartTakesOwnLease(t *testing.T) {
	tests := []struct {
		name string
		// db returns the --db of the test; ports says whether each
		// process gets a fixed --listen port (a restart reuses its own).
		db    func(t *testing.T, dir string) string
		ports bool
	}{
		{"sqlite", func(t *testing.T, dir string) string { return filepath.Join(dir, "imagegate.db") }, false},
		{"postgres", func(t *testing.T, _ string) string { return postgresSchema(t) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "imagegate.yaml")
			if err := os.WriteFile(cfg, []byte("controller: {interval: 100ms, leaseTTL: 30s}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			env := []string{"IMAGEGATE_ADMIN_TOKEN=" + crashAdmin}
			args := []string{"--db", tt.db(t, dir), "--config", cfg}
			listen := func(port int) []string {
				if !tt.ports {
					return args
				}
				return append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", port)}, args...)
			}
			waitLeads := func(s *serverProc, within time.Duration) {
				t.Helper()
				deadline := time.Now().Add(within)
				for !leads(s.url) {
					if time.Now().After(deadline) {
						t.Fatalf("%s does not lead after %v\n%s", s.url, within, s.stderr)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			port := freePort(t)
			s := startServer(t, env, listen(port)...)
			waitLeads(s, 5*time.Second)

			// A second live process on the same database must not take the lease.
			other := startServer(t, env, listen(freePort(t))...)
			time.Sleep(500 * time.Millisecond)
			if leads(other.url) {
				t.Fatalf("a second process on the database leads beside the first\n%s", other.stderr)
			}

			s.kill9(t)
			start := time.Now()
			s = startServer(t, env, listen(port)...)
			waitLeads(s, 5*time.Second)
			t.Logf("restarted replica leads %v after kill -9 (lease TTL 30s)", time.Since(start).Round(time.Millisecond))
			if leads(other.url) {
				t.Fatalf("the other process leads beside the restarted one\n%s", other.stderr)
			}
		})
	}
}

// freePort returns a TCP port on loopback that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
