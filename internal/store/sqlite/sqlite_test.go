package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/batch"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/store/storetest"
)

func mustOpen(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) rollout.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
	})
}

// TestStoreBulkTemplates runs the suite with RingTelemetry reading
// templates in bulk, which only rings with many new signatures do
// otherwise.
func TestStoreBulkTemplates(t *testing.T) {
	t.Cleanup(sqlite.BulkTemplates())
	storetest.Run(t, func(t *testing.T) rollout.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
	})
}

// TestAssignRuns runs storetest.RunAssignRuns against AssignRun's
// group writer.
func TestAssignRuns(t *testing.T) {
	storetest.RunAssignRuns(t, func(t *testing.T) (rollout.Store, batch.Writer) {
		db := mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
		return db, db.RunWriter()
	})
}

func TestOutbox(t *testing.T) {
	storetest.RunOutbox(t, func(t *testing.T) rollout.OutboxStore {
		return mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
	})
}

func TestSubscriptions(t *testing.T) {
	storetest.RunSubscriptions(t, func(t *testing.T) rollout.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
	})
}

func TestVerify(t *testing.T) {
	storetest.RunVerify(t, func(t *testing.T) rollout.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
	})
}

func TestReports(t *testing.T) {
	storetest.RunReports(t, func(t *testing.T) rollout.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
	})
}

// TestSharedFile runs the suite's races across two handles on one file, as
// two server processes would have.
func TestSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagegate.db")
	a, b := mustOpen(t, path), mustOpen(t, path)

	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	var errs []error
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			ok, _, err := s.AcquireLease(context.Background(), "controller", fmt.Sprint("h", i), time.Minute, storetest.T0)
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
			if ok {
				winners++
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if winners != 1 {
		t.Errorf("%d holders won the lease across two handles, want 1", winners)
	}

	evs := storetest.Events("job", "img", "v1", 1000)
	added := make([]int, 2)
	for i, s := range []*sqlite.DB{a, b} {
		wg.Go(func() {
			for j := 0; j < len(evs); j += 100 {
				n, err := s.AppendEvents(context.Background(), evs[j:j+100])
				if err != nil {
					t.Error(err)
					return
				}
				added[i] += n
			}
		})
	}
	wg.Wait()
	if added[0]+added[1] != 1000 {
		t.Errorf("two handles appending the same events stored %d+%d new, want 1000 in all", added[0], added[1])
	}
	storetest.MustVersion(t, a, "img", "v1")
	if _, err := b.GetVersion(t.Context(), "img", "v1", false); err != nil {
		t.Errorf("a version written through one handle is not visible through the other: %v", err)
	}
}

// TestConcurrentOpen starts several Opens of a new file at once; the
// migrations run exactly once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagegate.db")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			db, err := sqlite.Open(context.Background(), path)
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
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var migrations, generations int
	var mode string
	if err := raw.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&migrations); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT COUNT(*) FROM generation`).Scan(&generations); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("list this package's migrations: %v (found %d)", err, len(files))
	}
	if migrations != len(files) || generations != 1 || mode != "wal" {
		t.Errorf("after 6 concurrent opens: %d migrations recorded, %d generation rows, journal mode %q; want %d, 1, wal",
			migrations, generations, mode, len(files))
	}
}

// TestUpgradeAutoRollback opens a file whose schema predates
// rollouts.auto_rollback: the migration adds the column and the rollouts
// already stored read back with AutoRollback false.
func TestUpgradeAutoRollback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagegate.db")
	db := mustOpen(t, path)
	storetest.MustVersion(t, db, "img", "v1")
	r := rollout.Rollout{Label: "img", Version: "v1", FromVersion: "v0", State: rollout.StateBaking,
		Rings: []rollout.Ring{{Name: "all", Percent: 100}}, AutoRollback: true}
	if err := db.CreateRollout(t.Context(), &r, nil, storetest.Audit("rollout.start", "rollout/new")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Back to the schema of 0001_init.sql, as an older imagegate left it.
	for _, q := range []string{`ALTER TABLE rollouts DROP COLUMN auto_rollback`,
		`DELETE FROM schema_migrations WHERE name = '0002_rollout_auto_rollback.sql'`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	got, err := mustOpen(t, path).GetRollout(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.AutoRollback {
		t.Errorf("a rollout stored before the migration reads AutoRollback true, want false")
	}
}

func TestOpenRefusesQueryInPath(t *testing.T) {
	for _, p := range []string{"", "x.db?mode=memory", "a#b"} {
		if _, err := sqlite.Open(t.Context(), p); !errors.Is(err, rollout.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", p, err)
		}
	}
}

// FuzzCursor feeds client-made cursors to every list: a page or
// ErrInvalid, never a panic or another error.
func FuzzCursor(f *testing.F) {
	db := mustOpen(f, filepath.Join(f.TempDir(), "imagegate.db"))
	storetest.MustVersion(f, db, "img", "v1")
	for _, s := range []string{"", "MQ", "YQBi", "%%", "LTE", "OTIyMzM3MjAzNjg1NDc3NTgwOA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, after string) {
		ctx := context.Background()
		p := rollout.Page{After: after, Limit: 2}
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, rollout.ErrInvalid) {
				t.Fatalf("%s with cursor %q: %v, want a page or ErrInvalid", what, after, err)
			}
		}
		_, _, err := db.ListAudit(ctx, rollout.AuditFilter{}, p)
		check("ListAudit", err)
		_, _, err = db.ListPins(ctx, "", "", true, storetest.T0, p)
		check("ListPins", err)
		_, _, err = db.ListRollouts(ctx, "", []rollout.State{rollout.StateBaking}, p)
		check("ListRollouts", err)
		_, _, err = db.ListVersions(ctx, "img", p)
		check("ListVersions", err)
		_, _, err = db.ListImages(ctx, p)
		check("ListImages", err)
	})
}

// TestRelaxedCommitsRestoreFull checks that the writes committed without
// an fsync (AssignRun, AddServed) leave the shared writer connection at
// synchronous=FULL, so events, rollouts and pins stay durable.
func TestRelaxedCommitsRestoreFull(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	served := []rollout.Served{{Label: "img", Version: "v1", Minute: storetest.T0, Count: 1}}
	tests := []struct {
		name    string
		wantErr bool
		do      func() error
	}{
		{"assign run", false, func() error {
			_, err := db.AssignRun(context.Background(), "run-1", "img", "v1", storetest.T0)
			return err
		}},
		{"assign run again", false, func() error {
			_, err := db.AssignRun(context.Background(), "run-1", "img", "v2", storetest.T0)
			return err
		}},
		{"add served", false, func() error { return db.AddServed(context.Background(), served) }},
		{"add served canceled", true, func() error { return db.AddServed(canceled, served) }},
		{"append events", false, func() error {
			_, err := db.AppendEvents(context.Background(), storetest.Events("r", "img", "v1", 3))
			return err
		}},
	}
	for _, tt := range tests {
		if err := tt.do(); (err != nil) != tt.wantErr {
			t.Fatalf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
		}
		got, err := db.WriterSynchronous(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got != 2 {
			t.Errorf("after %s: writer synchronous = %d, want 2 (FULL)", tt.name, got)
		}
	}
}

// TestUpgradeRunsByLabel opens a file whose runs table predates 0003 (keyed
// by run, with an index on label): the assignments stored before keep
// winning over later ones, and ForgetRuns still drops them.
func TestUpgradeRunsByLabel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagegate.db")
	db := mustOpen(t, path)
	for _, a := range [][2]string{{"run-1", "img"}, {"run-1", "other"}, {"run-2", "img"}} {
		if _, err := db.AssignRun(t.Context(), a[0], a[1], "v-old", storetest.T0); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Back to the runs table of 0001_init.sql, as an older imagegate left it.
	for _, q := range []string{
		`CREATE TABLE runs_old (run_id TEXT NOT NULL, label TEXT NOT NULL, version TEXT NOT NULL,
			assigned_at INTEGER NOT NULL, PRIMARY KEY (run_id, label)) WITHOUT ROWID`,
		`INSERT INTO runs_old SELECT run_id, label, version, assigned_at FROM runs`,
		`DROP TABLE runs`,
		`ALTER TABLE runs_old RENAME TO runs`,
		`CREATE INDEX runs_label ON runs (label)`,
		`CREATE INDEX runs_assigned ON runs (assigned_at)`,
		`DELETE FROM schema_migrations WHERE name = '0003_runs_by_label.sql'`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db = mustOpen(t, path)
	if err := db.ForgetRuns(t.Context(), "other"); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ run, label, want string }{
		{"run-1", "img", "v-old"},
		{"run-2", "img", "v-old"},
		{"run-1", "other", "v-new"}, // forgotten
		{"run-3", "img", "v-new"},
	}
	for _, tt := range tests {
		got, err := db.AssignRun(t.Context(), tt.run, tt.label, "v-new", storetest.T0.Add(time.Hour))
		if err != nil || got != tt.want {
			t.Errorf("AssignRun(%s, %s) after the upgrade = %q, %v; want %q", tt.run, tt.label, got, err, tt.want)
		}
	}
}

// TestCountJobsPlan: CountJobs reads a range of job_minutes and one
// minute of the start-minute-keyed index of migration 0016, without
// touching the table (whose rows hold the error texts).
func TestCountJobsPlan(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
	plan, err := db.CountJobsPlan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join([]string{"CO-ROUTINE (subquery-2)", "COMPOUND QUERY", "LEFT-MOST SUBQUERY",
		"SEARCH job_minutes USING PRIMARY KEY (label=? AND version=? AND minute>?)", "UNION ALL",
		"SEARCH events USING COVERING INDEX events_count (label=? AND version=? AND <expr>=?)", "SCAN (subquery-2)"}, "\n"); plan != want {
		t.Errorf("CountJobs plan:\n%s\nwant:\n%s", plan, want)
	}
}

// TestRunsSelectPlan: when a group's INSERT finds runs stored before,
// AssignRuns reads their versions by the primary key, one search per
// run, not by a scan of the table.
func TestRunsSelectPlan(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "imagegate.db"))
	plan, err := db.RunsSelectPlan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "SEARCH r USING PRIMARY KEY (label=? AND run_id=?)") || strings.Contains(plan, "SCAN r") {
		t.Errorf("AssignRuns' read of stored runs, plan:\n%s\nwant a search of runs' primary key per run", plan)
	}
}

// TestUpgradeEventsCount: events stored before migration 0012 (some
// without received_at, as AppendEvents leaves it, some received long
// after they started) are counted exactly once 0012 and 0016 (which
// rebuilds the index again, by start minute, and backfills job_minutes)
// have run.
func TestUpgradeEventsCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagegate.db")
	db := mustOpen(t, path)
	obs := storetest.DefaultFleet.Observations(rand.New(rand.NewPCG(1, 2)), "o", "", 50, storetest.T0)
	started := make([]time.Time, 0, 80)
	for i := range obs {
		obs[i].Version, obs[i].Cohort, obs[i].Ring, obs[i].Stage = "v1", "", -1, -1
		obs[i].ReceivedAt = obs[i].StartedAt.Add(time.Duration(i) * time.Hour) // late reports
		started = append(started, obs[i].StartedAt)
	}
	if _, err := db.AppendObservations(t.Context(), obs); err != nil {
		t.Fatal(err)
	}
	evs := storetest.Events("e", "img", "v1", 30)
	if _, err := db.AppendEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		started = append(started, e.StartedAt)
	}
	check := func(when string) {
		t.Helper()
		for _, since := range []time.Time{{}, storetest.T0, storetest.T0.Add(10 * time.Millisecond), storetest.T0.Add(10 * time.Second),
			storetest.T0.Add(time.Hour)} {
			var want int64
			for _, at := range started {
				if !at.Before(since) {
					want++
				}
			}
			c, err := db.CountJobs(t.Context(), "img", "v1", -1, since)
			if err != nil || c.Total != want {
				t.Errorf("%s: CountJobs(since %v) = %d, %v; want %d", when, since, c.Total, err, want)
			}
		}
	}
	check("before")
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Back to the index of 0001_init.sql, before job_minutes.
	for _, q := range []string{
		`DROP INDEX events_count`,
		`CREATE INDEX events_count ON events (label, version, ring, started_at, outcome)`,
		`DROP TABLE job_minutes`,
		`DELETE FROM schema_migrations WHERE name IN ('0012_events_count_by_arrival.sql', '0016_job_minutes.sql')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	db = mustOpen(t, path)
	check("after the upgrade")
}

// TestUpgradeJobMinutes: events stored before migration 0016, through
// both write paths, are counted by the job_minutes it backfills.
func TestUpgradeJobMinutes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagegate.db")
	storetest.UpgradeJobMinutes(t, func() rollout.Store { return mustOpen(t, path) }, func() {
		raw, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		// Back to the schema of 0015, as an older imagegate left it.
		for _, q := range []string{
			`DROP TABLE job_minutes`,
			`DROP INDEX events_count`,
			`CREATE INDEX events_count ON events (label, version, max(received_at, started_at), ring, started_at, outcome)`,
			`DELETE FROM schema_migrations WHERE name = '0016_job_minutes.sql'`,
		} {
			if _, err := raw.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	})
}

// TestUnavailable: errors of the database's file system failing (here:
// the database closed, a file that cannot be written) are told apart
// from refusals and bugs, which stay as they are. The full disk is
// TestSQLiteDiskFull's, in the server's tests, on a tmpfs.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "imagegate.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(ctx); err != nil {
		t.Errorf("Ready on a fresh database: %v", err)
	}
	_, missing := db.GetRollout(ctx, "no-such-rollout")
	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	_, readOnly := ro.ExecContext(ctx, `INSERT INTO generation (id, value) VALUES (2, 0)`)
	ro.Close()
	db.Close()
	_, closed := db.Generation(ctx)
	tests := []struct {
		name   string
		err    error
		reason string
	}{
		{"not found", missing, ""},
		{"plain", errors.New("bug"), ""},
		{"read-only", readOnly, "database file not writable"},
		{"closed", closed, "database closed"},
		{"wrapped", fmt.Errorf("push: %w", readOnly), "database file not writable"},
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
