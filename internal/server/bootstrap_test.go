package server_test

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/sqlite"
)

// TestBootstrapAdmin: without IMAGEGATE_ADMIN_TOKEN the first start
// prints a working admin token once; later starts print nothing; an
// environment token is registered once and works.
func TestBootstrapAdmin(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ig.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var first, second bytes.Buffer
	if err := server.BootstrapAdmin(ctx, st, "", &first, now); err != nil {
		t.Fatal(err)
	}
	if err := server.BootstrapAdmin(ctx, st, "", &second, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(first.String()), "\n")
	printed := lines[len(lines)-1]
	if !strings.HasPrefix(printed, "igt_") || second.Len() != 0 {
		t.Fatalf("first start printed %q, second %q", first.String(), second.String())
	}
	tok, err := st.TokenByHash(ctx, server.HashToken(printed))
	if err != nil || tok.Role != rollout.RoleAdmin {
		t.Fatalf("printed token: %+v, %v", tok, err)
	}
	for range 2 {
		if err := server.BootstrapAdmin(ctx, st, "from-env", &second, now); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.CountTokens(ctx, rollout.RoleAdmin); err != nil || n != 2 {
		t.Fatalf("%d admin tokens, %v; want 2", n, err)
	}
}

// TestReadyz answers 503 once the store is gone, 200 before.
func TestReadyz(t *testing.T) {
	e := newEnv(t)
	c, _ := apiclient.New(e.URL, "", nil)
	if err := c.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.st.Close()
	resp, err := http.Get(e.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a closed store: %d", resp.StatusCode)
	}
}
