package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRestartTakesOwnLease: a replica killed with -9 and restarted on the
// same SQLite database leads again at once, not after the 30s lease TTL;
// while it runs, a second process on that database does not share its
// name and so cannot lead beside it.
func TestRestartTakesOwnLease(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "imagegate.db")
	cfg := filepath.Join(dir, "imagegate.yaml")
	if err := os.WriteFile(cfg, []byte("controller: {interval: 100ms, leaseTTL: 30s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"IMAGEGATE_ADMIN_TOKEN=" + crashAdmin}
	args := []string{"--db", db, "--config", cfg}
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
	s := startServer(t, env, args...)
	waitLeads(s, 5*time.Second)

	// A second live process on the same database must not take the lease.
	other := startServer(t, env, args...)
	time.Sleep(500 * time.Millisecond)
	if leads(other.url) {
		t.Fatalf("a second process on the database leads beside the first\n%s", other.stderr)
	}
	other.cmd.Process.Kill()
	other.cmd.Wait()

	s.kill9(t)
	start := time.Now()
	s = startServer(t, env, args...)
	waitLeads(s, 5*time.Second)
	t.Logf("restarted replica leads %v after kill -9 (lease TTL 30s)", time.Since(start).Round(time.Millisecond))
}
