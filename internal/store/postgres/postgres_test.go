package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/postgres"
	"github.com/imagegate/imagegate/internal/store/storetest"
)

// baseDSN is the test server from IMAGEGATE_TEST_POSTGRES, e.g.
// postgres://imagegate:imagegate@127.0.0.1:5432/imagegate_test?sslmode=disable.
// Without it the tests skip, except under CI=true, where they fail.
func baseDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("IMAGEGATE_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("IMAGEGATE_TEST_POSTGRES is not set and CI=true: PostgreSQL tests must run in CI")
		}
		tb.Skip("IMAGEGATE_TEST_POSTGRES not set")
	}
	return dsn
}

// freshSchema creates an empty schema, dropped when the test ends, and
// returns a DSN whose search_path points at it: tests stay independent
// and may run in parallel on one database.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	dsn := baseDSN(tb)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect to IMAGEGATE_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			tb.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Error(err)
		}
	})
	return withSearchPath(tb, dsn, schema)
}

func withSearchPath(tb testing.TB, dsn, schema string) string {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		tb.Fatalf("IMAGEGATE_TEST_POSTGRES must be a postgres:// URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func mustOpen(tb testing.TB, dsn string) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	baseDSN(t)
	storetest.Run(t, func(t *testing.T) rollout.Store {
		return mustOpen(t, freshSchema(t))
	})
}

// TestCrash kill -9s a process appending events; every batch it
// acknowledged survives, none is torn.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dsn := freshSchema(t)
	storetest.Crash(t, "TestCrashChild", dsn, 2, func() rollout.Store {
		db, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

func TestCrashChild(t *testing.T) {
	storetest.CrashChild(t, func(dsn string) rollout.Store { return mustOpen(t, dsn) })
}
