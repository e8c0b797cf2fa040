package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/batch"
)

// AssignRun keys assignments by run and label: one workflow run may use
// several images. It is on the resolve path of every new run, so
// concurrent calls are group-committed (see package batch): one
// transaction for all the calls waiting, without an fsync
// (synchronous=NORMAL; see the package doc).
func (db *DB) AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error) {
	return db.runs.AssignRun(ctx, runID, label, version, now)
}

// runRows writes batch's group commits.
type runRows struct{ db *DB }

var _ batch.Writer = runRows{}

// maxRunsPerInsert bounds the rows of one of AssignRuns' statements, and
// so the number of them runStmts caches.
const maxRunsPerInsert = 64

// runKey is an assignment's primary key.
type runKey struct{ label, run string }

// AssignRuns writes b in one relaxed transaction. The first assignment
// of each (RunID, Label) of b goes into a multi-row INSERT ... ON
// CONFLICT DO NOTHING, a statement per maxRunsPerInsert runs; when it
// inserts fewer rows than it was given, some runs were stored before,
// and one SELECT reads the versions stored for all of its runs. Every
// assignment of a run repeated in b gets the first one's answer.
//
// One INSERT ... RETURNING per assignment cost more than the rows it
// wrote: each statement's step, reset and RETURNING buffer, and
// database/sql's Rows around it, were paid per run.
func (w runRows) AssignRuns(ctx context.Context, b *batch.Batch) error {
	db := w.db
	first := make(map[runKey]int, len(b.Assignments)) // index of a key's first assignment in b
	distinct := make([]int, 0, len(b.Assignments))    // those indexes, in b's order
	for i := range b.Assignments {
		a := &b.Assignments[i]
		k := runKey{a.Label, a.RunID}
		if _, ok := first[k]; !ok {
			first[k] = i
			distinct = append(distinct, i)
		}
	}
	// Prepared before the transaction: it holds the writer's only
	// connection, which a preparation on the pool would wait for.
	full, part, err := db.runStmts.get(ctx, db.wr, len(distinct))
	if err != nil {
		return err
	}
	return db.writeRelaxed(ctx, func(tx *sql.Tx) error {
		args := make([]any, 0, 4*min(len(distinct), maxRunsPerInsert))
		for rest := distinct; len(rest) > 0; {
			n := min(len(rest), maxRunsPerInsert)
			st := part
			if n == maxRunsPerInsert {
				st = full
			}
			if err := assignChunk(ctx, tx, st, b.Assignments, rest[:n], args); err != nil {
				return err
			}
			rest = rest[n:]
		}
		for i := range b.Assignments {
			a := &b.Assignments[i]
			if j := first[runKey{a.Label, a.RunID}]; j != i {
				a.Got = b.Assignments[j].Got
			}
		}
		if b.PruneBefore.IsZero() {
			return nil
		}
		// runs_assigned makes it a range delete.
		_, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE assigned_at < ?`, us(b.PruneBefore))
		return err
	})
}

// assignChunk writes the assignments as[i] of chunk (distinct runs, as
// many as st's rows) and sets their Got. args is scratch space.
func assignChunk(ctx context.Context, tx *sql.Tx, st *runSQL, as []batch.Assignment, chunk []int, args []any) error {
	args = args[:0]
	for _, i := range chunk {
		a := &as[i]
		args = append(args, a.RunID, a.Label, a.Version, us(a.At))
	}
	ins := tx.StmtContext(ctx, st.ins)
	defer ins.Close()
	res, err := ins.ExecContext(ctx, args...)
	if err != nil {
		return err
	}
	added, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if added == int64(len(chunk)) { // every run is new
		for _, i := range chunk {
			as[i].Got = as[i].Version
		}
		return nil
	}
	args = args[:0]
	for _, i := range chunk {
		args = append(args, as[i].Label, as[i].RunID)
	}
	sel := tx.StmtContext(ctx, st.sel)
	defer sel.Close()
	rows, err := sel.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	got := make(map[runKey]string, len(chunk))
	for rows.Next() {
		var k runKey
		var v string
		if err := rows.Scan(&k.label, &k.run, &v); err != nil {
			return err
		}
		got[k] = v
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, i := range chunk {
		a := &as[i]
		v, ok := got[runKey{a.Label, a.RunID}]
		if !ok { // cannot happen inside the transaction that inserted it
			return rollout.ErrRunForgotten(a.RunID, a.Label)
		}
		a.Got = v
	}
	return nil
}

// runSQL is AssignRuns' pair of statements for one number of runs.
type runSQL struct{ ins, sel *sql.Stmt }

// runStmts caches AssignRuns' statements by their number of runs,
// prepared on the writer pool when first needed: parsing them for every
// group commit cost a quarter of its time under resolve load.
type runStmts struct {
	mu    sync.Mutex
	sizes [maxRunsPerInsert + 1]*runSQL
}

// get returns the statements that write n runs: full for
// maxRunsPerInsert runs (nil when n is fewer), part for the n %
// maxRunsPerInsert runs left (nil when none are).
func (c *runStmts) get(ctx context.Context, wr *sql.DB, n int) (full, part *runSQL, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n >= maxRunsPerInsert {
		if full, err = c.prepare(ctx, wr, maxRunsPerInsert); err != nil {
			return nil, nil, err
		}
	}
	if n%maxRunsPerInsert != 0 {
		if part, err = c.prepare(ctx, wr, n%maxRunsPerInsert); err != nil {
			return nil, nil, err
		}
	}
	return full, part, nil
}

func (c *runStmts) prepare(ctx context.Context, wr *sql.DB, n int) (*runSQL, error) {
	if s := c.sizes[n]; s != nil {
		return s, nil
	}
	ins, err := wr.PrepareContext(ctx, `INSERT INTO runs (run_id, label, version, assigned_at) VALUES (?, ?, ?, ?)`+
		strings.Repeat(`, (?, ?, ?, ?)`, n-1)+` ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, fmt.Errorf("prepare run assignment: %w", err)
	}
	// A join, so that each key is a search of the primary key: SQLite
	// scans the table for (label, run_id) IN (VALUES ...).
	sel, err := wr.PrepareContext(ctx, runsSelectSQL(n))
	if err != nil {
		ins.Close()
		return nil, fmt.Errorf("prepare run assignment: %w", err)
	}
	c.sizes[n] = &runSQL{ins: ins, sel: sel}
	return c.sizes[n], nil
}

// runsSelectSQL reads the versions stored for n (label, run_id) pairs.
func runsSelectSQL(n int) string {
	return `SELECT r.label, r.run_id, r.version FROM (VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, n-1) + `) AS k
		JOIN runs AS r ON r.label = k.column1 AND r.run_id = k.column2`
}

// Close closes the statements prepared.
func (c *runStmts) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for i, s := range c.sizes {
		if s != nil {
			errs = append(errs, s.ins.Close(), s.sel.Close())
			c.sizes[i] = nil
		}
	}
	return errors.Join(errs...)
}

// ForgetRuns drops label's run assignments.
func (db *DB) ForgetRuns(ctx context.Context, label string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE label = ?`, label); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("forget runs of %s: %w", label, err)
	}
	return nil
}

// AddServed adds counts into whole-minute buckets (Minute is truncated).
// Like AssignRun it commits without an fsync: the counts are statistics.
func (db *DB) AddServed(ctx context.Context, counts []rollout.Served) error {
	if len(counts) == 0 {
		return nil
	}
	err := db.writeRelaxed(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO served (label, minute, version, ring, reason, count)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (label, minute, version, ring, reason) DO UPDATE SET count = count + excluded.count`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, c := range counts {
			if _, err := st.ExecContext(ctx, c.Label, us(c.Minute.Truncate(time.Minute)), c.Version, c.Ring, c.Reason,
				c.Count); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add served counts: %w", err)
	}
	return nil
}

// ServedSince sums label's counts per version, ring and reason over the
// minute buckets from the one holding since; Minute is the latest bucket
// summed. Ordered by version, ring, reason.
func (db *DB) ServedSince(ctx context.Context, label string, since time.Time) ([]rollout.Served, error) {
	rows, err := db.rd.QueryContext(ctx, `SELECT version, ring, reason, SUM(count), MAX(minute) FROM served
		WHERE label = ? AND minute >= ? GROUP BY version, ring, reason ORDER BY version, ring, reason`,
		label, us(since.Truncate(time.Minute)))
	if err != nil {
		return nil, fmt.Errorf("served counts of %s: %w", label, err)
	}
	defer rows.Close()
	var out []rollout.Served
	for rows.Next() {
		s := rollout.Served{Label: label}
		var minute int64
		if err := rows.Scan(&s.Version, &s.Ring, &s.Reason, &s.Count, &minute); err != nil {
			return nil, fmt.Errorf("served counts of %s: %w", label, err)
		}
		s.Minute = fromUS(minute)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("served counts of %s: %w", label, err)
	}
	return out, nil
}
