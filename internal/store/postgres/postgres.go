// Package postgres is the rollout.Store for several replicas: PostgreSQL
// through pgx's pool.
//
// Transactions run at READ COMMITTED; correctness under concurrency comes
// from single-statement compare-and-set (rollout revisions, the lease
// upsert), unique constraints (one unfinished rollout per label, job IDs,
// run assignments) and a fixed lock order (a change's own rows, then the
// generation row last), so writers never deadlock one another.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/batch"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a rollout.Store in a PostgreSQL database (the schema named by the
// DSN's search_path, else public).
type DB struct {
	pool *pgxpool.Pool
	// relaxed has synchronous_commit=off: for writes whose loss in a
	// PostgreSQL crash costs nothing but a little history (run affinity,
	// served counts), so they do not wait for a WAL flush.
	relaxed *pgxpool.Pool
	runs    *batch.Runs            // group-commits AssignRun through runRows
	events  *batch.Group[*obsCall] // group-commits AppendObservations
}

var _ rollout.Store = (*DB)(nil)

// Open connects to dsn (a postgres:// URL or key=value string; pool
// settings such as pool_max_conns are accepted) and applies pending
// migrations. Several replicas may Open at once: an advisory lock lets one
// migrate while the others wait.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, fmt.Errorf("open postgres: %w: cannot parse the DSN", rollout.ErrInvalid)
	}
	withConnectTimeout(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", cfg.ConnConfig.Host, err)
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	rcfg := cfg.Copy()
	rcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	db.relaxed, err = pgxpool.NewWithConfig(ctx, rcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", cfg.ConnConfig.Host, err)
	}
	// Several committers: the pool's connections write in parallel, and
	// each batch is one round trip or two.
	db.runs = batch.New(runRows{db}, batch.Options{Committers: 4})
	// Two: one group is written while the next gathers; more would wait
	// on each other's counter rows.
	db.events = batch.NewGroup(db.appendGroup, func(c *obsCall) int { return len(c.obs) }, batch.Options{Committers: 2, MaxSize: maxGroupEvents})
	return db, nil
}

// Close stops the group committers and closes the pools. AssignRun and
// AppendObservations calls still waiting fail.
func (db *DB) Close() error {
	db.runs.Close()
	db.events.Close()
	db.relaxed.Close()
	db.pool.Close()
	return nil
}

func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Keyed by schema, so test schemas in one database do not queue.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('imagegate.migrate.' || current_schema()))`); err != nil {
			return fmt.Errorf("lock for migration: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT name FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		done := map[string]bool{}
		for _, n := range applied {
			done[n] = true
		}
		for _, name := range names {
			base := strings.TrimPrefix(name, "migrations/")
			if done[base] {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return fmt.Errorf("read migration %s: %w", base, err)
			}
			// No arguments: the simple protocol, which runs every
			// statement of the file.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("apply migration %s: %w", base, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, base); err != nil {
				return fmt.Errorf("record migration %s: %w", base, err)
			}
		}
		return nil
	})
}

// change runs fn in a transaction and, when fn reports a change, records
// audit and bumps the generation in it (generation last: see the package
// comment on lock order).
func (db *DB) change(ctx context.Context, audit rollout.AuditEntry, fn func(tx pgx.Tx) (bool, error)) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
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

func bumpGeneration(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE generation SET value = value + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("bump generation: %w", err)
	}
	return nil
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	deadlockDetected    = "40P01"
)

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

func constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

func utc(t time.Time) time.Time { return t.UTC() }

// Generation reads the change counter.
func (db *DB) Generation(ctx context.Context) (int64, error) {
	var g int64
	if err := db.pool.QueryRow(ctx, `SELECT value FROM generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	return g, nil
}
