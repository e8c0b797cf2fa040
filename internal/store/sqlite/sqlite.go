// Package sqlite is the embedded rollout.Store: one SQLite file in WAL
// mode, through modernc.org/sqlite (pure Go, so the binary stays static).
//
// SQLite admits one writer at a time, so every write goes through a single
// connection (callers queue in database/sql rather than spin on
// SQLITE_BUSY), and reads use a separate pool that WAL lets run beside it.
// Several processes may open the same file: BEGIN IMMEDIATE and
// busy_timeout serialize their writers.
//
// Durability: synchronous=FULL, so every commit (one per AppendEvents
// batch) is fsynced before the call returns. In WAL mode synchronous=NORMAL
// would already survive kill -9 — the WAL is in the page cache — but not a
// power loss or kernel panic, and the control plane promises "durable
// before the 2xx". The cost is one fsync per transaction; with batches of
// 500 events it is small (see BenchmarkAppendEvents).
//
// Checkpoints (copying the WAL back into the database file) run on a
// connection of their own (checkpointLoop), not inside the commit that
// crosses SQLite's threshold: under ingest the automatic checkpoint was a
// tenth of the single writer's time, and its fsyncs of the database file
// stalled every caller queued behind that commit. They copy only frames
// already committed and fsynced, so durability is the same.
//
// The exceptions are AssignRun and AddServed, whose contract allows losing
// recent writes: they commit with synchronous=NORMAL (see writeRelaxed),
// because an fsync per group of new runs halves resolve throughput. A
// power loss can forget the last run assignments (a re-run may then get
// another version, as after rollout.RunRetention) and served counts; kill -9
// forgets nothing.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/batch"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a rollout.Store in one SQLite file.
type DB struct {
	path string
	wr   *sql.DB // one connection: the only writer of this process
	rd   *sql.DB // readers
	ck   *sql.DB // one connection: the checkpointer (checkpointLoop)

	// kick wakes checkpointLoop after a commit; ckQuit and ckDone stop it.
	kick           chan struct{}
	ckQuit, ckDone chan struct{}

	runStmts  runStmts               // AssignRun's statements, prepared once on the writer
	runs      *batch.Runs            // group-commits AssignRun through runRows
	events    *batch.Group[*obsCall] // group-commits AppendObservations
	closing   sync.Once
	tel       telCache      // telemetry rows known committed (telemetry.go)
	templates templateCache // signature templates read (telemetry.go)
}

var _ rollout.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path and applies pending
// migrations. Several processes may Open the same path at once.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite %q: %w: the path must be non-empty and contain no '?' or '#'", path, rollout.ErrInvalid)
	}
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous(FULL)")
	wq := url.Values{}
	for k, v := range common {
		wq[k] = append([]string(nil), v...)
	}
	wq.Add("_pragma", "journal_mode(WAL)")
	// A group commit of ingest dirties a few thousand pages; with the
	// default 2 MiB cache SQLite spilled them to the WAL mid-transaction
	// and read the tables' pages back from the OS on every batch.
	wq.Add("_pragma", fmt.Sprintf("cache_size(%d)", -writerCacheKiB))
	wq.Add("_pragma", "temp_store(MEMORY)")
	// checkpointLoop checkpoints; this is the backstop should it fall
	// far behind.
	wq.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", backstopCheckpointPages))
	wq.Set("_txlock", "immediate")
	rq := url.Values{}
	for k, v := range common {
		rq[k] = append([]string(nil), v...)
	}
	rq.Add("_pragma", "query_only(1)")
	cq := url.Values{}
	for k, v := range common {
		cq[k] = append([]string(nil), v...)
	}

	wr, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	wr.SetMaxOpenConns(1)
	wr.SetMaxIdleConns(1)
	wr.SetConnMaxLifetime(0)
	wr.SetConnMaxIdleTime(0)
	db := &DB{path: path, wr: wr, kick: make(chan struct{}, 1), ckQuit: make(chan struct{}), ckDone: make(chan struct{})}
	if err := db.migrate(ctx); err != nil {
		wr.Close()
		return nil, err
	}
	// Readers are opened after the writer switched the file to WAL, so
	// they never race it for the journal mode.
	rd, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		wr.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	rd.SetMaxOpenConns(n)
	rd.SetMaxIdleConns(n)
	db.rd = rd
	if err := rd.PingContext(ctx); err != nil {
		rd.Close()
		wr.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	ck, err := sql.Open("sqlite", "file:"+path+"?"+cq.Encode())
	if err != nil {
		rd.Close()
		wr.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	ck.SetMaxOpenConns(1)
	ck.SetMaxIdleConns(1)
	ck.SetConnMaxLifetime(0)
	ck.SetConnMaxIdleTime(0)
	db.ck = ck
	go db.checkpointLoop()
	// One committer: SQLite has one writer.
	db.runs = batch.New(runRows{db}, batch.Options{Committers: 1})
	db.events = batch.NewGroup(db.appendGroup, func(c *obsCall) int { return len(c.obs) }, batch.Options{Committers: 1, MaxSize: maxGroupEvents})
	return db, nil
}

// Close stops the group committers and closes both pools. AssignRun and
// AppendObservations calls still waiting fail.
func (db *DB) Close() error {
	var err error
	db.closing.Do(func() {
		err = errors.Join(db.runs.Close(), db.events.Close(), db.runStmts.Close(), db.rd.Close(), db.wr.Close())
		close(db.ckQuit)
		<-db.ckDone
		err = errors.Join(err, db.ck.Close())
	})
	return err
}

// migrate applies the embedded migrations not yet recorded, all in one
// IMMEDIATE transaction so that two processes starting at once apply them
// exactly once.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	return db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations in %s: %w", db.path, err)
		}
		applied := map[string]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT name FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations in %s: %w", db.path, err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return fmt.Errorf("read schema_migrations in %s: %w", db.path, err)
			}
			applied[n] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read schema_migrations in %s: %w", db.path, err)
		}
		for _, name := range names {
			base := strings.TrimPrefix(name, "migrations/")
			if applied[base] {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return fmt.Errorf("read migration %s: %w", base, err)
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply migration %s to %s: %w", base, db.path, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`,
				base, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("record migration %s in %s: %w", base, db.path, err)
			}
		}
		return nil
	})
}

// write runs fn in an IMMEDIATE transaction on the writer connection.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.writeOn(ctx, db.wr, fn)
}

// writeRelaxed is write without the fsync at commit, for the data whose
// contract lets a power loss drop its last writes (run assignments,
// served counts): the transaction runs with synchronous=NORMAL, which in
// WAL mode still survives a crash of the process, and FULL is restored
// before the connection serves anyone else. The next FULL commit (or
// checkpoint) fsyncs the WAL, these frames included.
func (db *DB) writeRelaxed(ctx context.Context, fn func(tx *sql.Tx) error) error {
	conn, err := db.wr.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin write on %s: %w", db.path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return fmt.Errorf("relax synchronous on %s: %w", db.path, err)
	}
	err = db.writeOn(ctx, conn, fn)
	// Restored even when ctx is done: a writer connection left at NORMAL
	// would silently relax events, rollouts and pins too. If that fails
	// the connection is discarded instead, and the pool opens a new one
	// (FULL from the DSN).
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); rerr != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
		return errors.Join(err, fmt.Errorf("restore synchronous on %s: %w", db.path, rerr))
	}
	return err
}

// beginner is the writer pool or one connection taken from it.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

func (db *DB) writeOn(ctx context.Context, wr beginner, fn func(tx *sql.Tx) error) error {
	tx, err := wr.BeginTx(ctx, nil)
	// SQLite answers BUSY without calling the busy handler in a few states
	// (another process switching the file to WAL or recovering it), so
	// BEGIN is retried for as long as busy_timeout would have waited.
	for wait, deadline := time.Millisecond, time.Now().Add(busyTimeout); isBusy(err) && time.Now().Before(deadline); wait = min(2*wait, 50*time.Millisecond) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("begin write on %s: %w", db.path, ctx.Err())
		case <-time.After(wait):
		}
		tx, err = wr.BeginTx(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("begin write on %s: %w", db.path, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit to %s: %w", db.path, err)
	}
	select {
	case db.kick <- struct{}{}:
	default: // a checkpoint is due already
	}
	return nil
}

// checkpointLoop checkpoints the WAL after commits, at most every
// checkpointEvery, until Close: a few fsyncs a second, off the writer
// (also under relaxed commits, which then reach the disk sooner than they
// must). PASSIVE neither waits for nor blocks the writer or readers: it
// copies what no reader still needs, and the writer starts the WAL over
// once everything was copied. A failure is retried
// at the next commit; the writer's wal_autocheckpoint is the backstop.
func (db *DB) checkpointLoop() {
	defer close(db.ckDone)
	for {
		select {
		case <-db.kick:
		case <-db.ckQuit:
			return
		}
		// Several commits' frames per checkpoint: each costs two fsyncs.
		select {
		case <-time.After(checkpointEvery):
		case <-db.ckQuit:
			return
		}
		db.ck.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	}
}

// checkpointEvery paces checkpointLoop: under full ingest load that is a
// checkpoint per thousand or so WAL pages, SQLite's own threshold.
const checkpointEvery = 250 * time.Millisecond

// backstopCheckpointPages is the writer's wal_autocheckpoint, ten times
// SQLite's default: it only acts when checkpointLoop falls behind.
const backstopCheckpointPages = 10_000

// change runs fn in a write transaction and, when fn reports that it
// changed state, records audit and bumps the generation in the same
// transaction. A no-op (say, PutImage of an existing image) leaves no
// audit entry, so the log holds exactly the changes.
func (db *DB) change(ctx context.Context, audit rollout.AuditEntry, fn func(tx *sql.Tx) (bool, error)) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		changed, err := fn(tx)
		if err != nil || !changed {
			return err
		}
		if err := insertAudit(ctx, tx, audit); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
}

func bumpGeneration(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE generation SET value = value + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("bump generation: %w", err)
	}
	return nil
}

// writerCacheKiB is the writer connection's page cache.
const writerCacheKiB = 64 << 10

// busyTimeout is how long a writer waits for another process's write.
const busyTimeout = 10 * time.Second

func isBusy(err error) bool {
	var se *msqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// isConstraint reports whether err is the SQLite constraint violation code.
func isConstraint(err error, code int) bool {
	var se *msqlite.Error
	return errors.As(err, &se) && se.Code() == code
}

// us converts to the stored form: microseconds since the epoch.
func us(t time.Time) int64 { return t.UnixMicro() }

// fromUS converts back; the result is in UTC.
func fromUS(v int64) time.Time { return time.UnixMicro(v).UTC() }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Generation reads the change counter.
func (db *DB) Generation(ctx context.Context) (int64, error) {
	var g int64
	if err := db.rd.QueryRowContext(ctx, `SELECT value FROM generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	return g, nil
}
