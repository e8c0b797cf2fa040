package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/testenv"
)

// postgresSchema returns a DSN for a fresh schema of the database in
// IMAGEGATE_TEST_POSTGRES, dropped at the end.
func postgresSchema(t *testing.T) string {
	t.Helper()
	dsn := testenv.RequirePostgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to IMAGEGATE_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "srv_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		t.Fatalf("IMAGEGATE_TEST_POSTGRES must be a postgres:// URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// leads reads imagegate_controller_leader from a replica's /metrics;
// false when the replica does not answer.
func leads(url string) bool {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), "\nimagegate_controller_leader 1\n")
}

// TestReplicasFailover runs two real server processes on one PostgreSQL
// schema with the default lease (10s TTL, 1s interval): both serve the
// API, exactly one runs the controller at a time, and when the leader is
// killed with SIGKILL the other takes over within 15 s.
func TestReplicasFailover(t *testing.T) {
	dsn := postgresSchema(t)
	env := []string{"IMAGEGATE_ADMIN_TOKEN=" + crashAdmin}
	a := startServer(t, env, "--db", dsn)
	b := startServer(t, env, "--db", dsn)
	ctx := context.Background()

	// Both replicas serve: a version pushed through one resolves on the other.
	ca, cb := adminClient(t, a.url), adminClient(t, b.url)
	if err := ca.SetRings(ctx, "", []rollout.Ring{{Name: "all", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.PushVersion(ctx, "pg", api.PushVersionRequest{Version: "v1", CheckReport: []byte(`{"verdict":"pass"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.StartRollout(ctx, api.StartRolloutRequest{Label: "pg", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := cb.Resolve(ctx, "org-1", "pg", "")
		if err == nil && res.Version == "v1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b never resolved v1: %+v, %v", res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// One leader, never two, over a few lease renewals.
	var leader, other *serverProc
	deadline = time.Now().Add(15 * time.Second)
	stableSince := time.Time{}
	for time.Now().Before(deadline) {
		la, lb := leads(a.url), leads(b.url)
		if la && lb {
			t.Fatal("both replicas lead the controller at once")
		}
		switch {
		case la && leader != a, lb && leader != b:
			leader, other, stableSince = a, b, time.Now()
			if lb {
				leader, other = b, a
			}
		case !la && !lb:
			leader, stableSince = nil, time.Time{}
		}
		if leader != nil && time.Since(stableSince) > 3*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if leader == nil {
		t.Fatal("no replica took the controller lease within 15 s")
	}

	leader.kill9(t)
	killed := time.Now()
	for !leads(other.url) {
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("the surviving replica did not take over within 15 s:\n%s", other.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("failover after kill -9 of the leader: %v", time.Since(killed).Round(100*time.Millisecond))
	if res, err := adminClient(t, other.url).Resolve(ctx, "org-2", "pg", ""); err != nil || res.Version != "v1" {
		t.Fatalf("survivor resolves %+v, %v", res, err)
	}
}
