package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/batch"
	"github.com/imagegate/imagegate/internal/store/postgres"
	"github.com/imagegate/imagegate/internal/store/storetest"
	"github.com/imagegate/imagegate/internal/testenv"
)

// freshSchema creates an empty schema, dropped when the test ends, and
// returns a DSN whose search_path points at it: tests stay independent
// and may run in parallel on one database.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	dsn := testenv.RequirePostgres(tb)
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
	testenv.RequirePostgres(t)
	storetest.Run(t, func(t *testing.T) rollout.Store {
		return mustOpen(t, freshSchema(t))
	})
}

// TestAssignRuns runs storetest.RunAssignRuns against AssignRun's
// group writer.
func TestAssignRuns(t *testing.T) {
	testenv.RequirePostgres(t)
	storetest.RunAssignRuns(t, func(t *testing.T) (rollout.Store, batch.Writer) {
		db := mustOpen(t, freshSchema(t))
		return db, db.RunWriter()
	})
}

func TestOutbox(t *testing.T) {
	testenv.RequirePostgres(t)
	storetest.RunOutbox(t, func(t *testing.T) rollout.OutboxStore { return mustOpen(t, freshSchema(t)) })
}

func TestSubscriptions(t *testing.T) {
	testenv.RequirePostgres(t)
	storetest.RunSubscriptions(t, func(t *testing.T) rollout.Store { return mustOpen(t, freshSchema(t)) })
}

func TestVerify(t *testing.T) {
	testenv.RequirePostgres(t)
	storetest.RunVerify(t, func(t *testing.T) rollout.Store { return mustOpen(t, freshSchema(t)) })
}

func TestReports(t *testing.T) {
	testenv.RequirePostgres(t)
	storetest.RunReports(t, func(t *testing.T) rollout.Store { return mustOpen(t, freshSchema(t)) })
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

// TestConcurrentOpen starts replicas at once on an empty schema: the
// advisory lock lets exactly one apply the migrations.
func TestConcurrentOpen(t *testing.T) {
	dsn := freshSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			db, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var migrations, generations int
	if err := conn.QueryRow(t.Context(), `SELECT (SELECT COUNT(*) FROM schema_migrations), (SELECT COUNT(*) FROM generation)`).
		Scan(&migrations, &generations); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("list this package's migrations: %v (found %d)", err, len(files))
	}
	if migrations != len(files) || generations != 1 {
		t.Errorf("after 6 concurrent opens: %d migrations recorded, %d generation rows; want %d and 1", migrations, generations, len(files))
	}
}

// TestUpgradeAutoRollback opens a schema that predates
// rollouts.auto_rollback: the migration adds the column and the rollouts
// already stored read back with AutoRollback false.
func TestUpgradeAutoRollback(t *testing.T) {
	dsn := freshSchema(t)
	db := mustOpen(t, dsn)
	storetest.MustVersion(t, db, "img", "v1")
	r := rollout.Rollout{Label: "img", Version: "v1", FromVersion: "v0", State: rollout.StateBaking,
		Rings: []rollout.Ring{{Name: "all", Percent: 100}}, AutoRollback: true}
	if err := db.CreateRollout(t.Context(), &r, nil, storetest.Audit("rollout.start", "rollout/new")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Back to the schema of 0001_init.sql, as an older imagegate left it.
	for _, q := range []string{`ALTER TABLE rollouts DROP COLUMN auto_rollback`,
		`DELETE FROM schema_migrations WHERE name = '0002_rollout_auto_rollback.sql'`} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	got, err := mustOpen(t, dsn).GetRollout(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.AutoRollback {
		t.Errorf("a rollout stored before the migration reads AutoRollback true, want false")
	}
}

// TestUpgradeJobMinutes: events stored before migration 0016, through
// both write paths, are counted by the job_minutes it backfills.
func TestUpgradeJobMinutes(t *testing.T) {
	dsn := freshSchema(t)
	storetest.UpgradeJobMinutes(t, func() rollout.Store { return mustOpen(t, dsn) }, func() {
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		// Back to the schema of 0015, as an older imagegate left it.
		for _, q := range []string{`DROP TABLE job_minutes`, `DELETE FROM schema_migrations WHERE name = '0016_job_minutes.sql'`} {
			if _, err := conn.Exec(t.Context(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	})
}

// TestTwoReplicas races two pools, as two server processes would: one
// lease holder, no double-counted events, one winner per run.
func TestTwoReplicas(t *testing.T) {
	dsn := freshSchema(t)
	replicas := []*postgres.DB{mustOpen(t, dsn), mustOpen(t, dsn)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners, added := 0, 0
	runs := map[string]bool{}
	var errs []error
	evs := storetest.Events("job", "img", "v1", 1000)
	for i := range 20 {
		s := replicas[i%2]
		wg.Go(func() {
			ok, _, err := s.AcquireLease(context.Background(), "controller", fmt.Sprint("replica-", i), time.Minute, storetest.T0)
			n, err2 := s.AppendEvents(context.Background(), evs[(i%10)*100:(i%10+1)*100])
			v, err3 := s.AssignRun(context.Background(), "run-1", "img", fmt.Sprint("v", i), storetest.T0)
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err, err2, err3)
			if ok {
				winners++
			}
			added += n
			runs[v] = true
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if winners != 1 || added != 1000 || len(runs) != 1 {
		t.Errorf("two replicas: %d lease winners, %d new events, run versions %v; want 1, 1000, one version", winners, added, runs)
	}
}

func TestOpenBadDSN(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://u:secret@[::1")
	if !errors.Is(err, rollout.ErrInvalid) || strings.Contains(err.Error(), "secret") {
		t.Errorf("Open with an unparsable DSN: %v; want ErrInvalid without the password", err)
	}
}

// TestUnavailable: errors of PostgreSQL failing (unreachable, shut down,
// the pool closed) are told apart from refusals and bugs, which stay as
// they are.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	_, missing := db.GetRollout(ctx, "no-such-rollout")
	_, refused := pgx.Connect(ctx, "postgres://imagegate@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	db.Close()
	_, closed := db.Generation(ctx)
	tests := []struct {
		name   string
		err    error
		reason string
	}{
		{"not found", missing, ""},
		{"plain", errors.New("bug"), ""},
		{"connection refused", refused, "database unreachable"},
		{"pool closed", closed, "database closed"},
		{"wrapped", fmt.Errorf("push: %w", refused), "database unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := db.Unavailable(tt.err)
			if reason != tt.reason || ok != (tt.reason != "") {
				t.Errorf("Unavailable(%v) = %q, %v; want %q", tt.err, reason, ok, tt.reason)
			}
		})
	}
}

// TestOpenGivesUpOnSilentServer: a server that accepts connections and
// never answers (a frozen host) fails Open after the default connect
// timeout, as a failing dependency, instead of holding it for minutes.
func TestOpenGivesUpOnSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	start := time.Now()
	_, err = postgres.Open(context.Background(), "postgres://imagegate@"+l.Addr().String()+"/x?sslmode=disable")
	took := time.Since(start)
	if err == nil || took > postgres.DefaultConnectTimeout+2*time.Second {
		t.Fatalf("Open = %v after %v, want an error within about %v", err, took, postgres.DefaultConnectTimeout)
	}
	var db *postgres.DB
	if reason, ok := db.Unavailable(err); !ok {
		t.Errorf("Open's error %v is not unavailable (%q)", err, reason)
	}
}
