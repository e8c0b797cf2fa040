package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// AssignRun keys assignments by run and label: one workflow run may use
// several images. Assignments older than RunRetention are dropped now and
// then.
//
// It is on the resolve path of every new run, so concurrent calls are
// group-committed: one transaction for all the calls waiting, without an
// fsync (synchronous=NORMAL; see the package doc).
func (db *DB) AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error) {
	req := &assignReq{runID: runID, label: label, version: version, now: now, done: make(chan struct{})}
	select {
	case db.assign <- req:
	case <-ctx.Done():
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, ctx.Err())
	case <-db.quit:
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, errClosed)
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, ctx.Err())
	case <-db.quit:
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, errClosed)
	}
	if req.err != nil {
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, req.err)
	}
	return req.got, nil
}

var errClosed = errors.New("store closed")

type assignReq struct {
	runID, label, version string
	now                   time.Time
	got                   string
	err                   error
	done                  chan struct{}
}

// maxAssignBatch bounds one group commit, so its latency stays small.
const maxAssignBatch = 512

// maxAssignYields bounds how often assignLoop yields for more callers
// before committing; it stops earlier when a yield brought none.
const maxAssignYields = 4

// assignLoop group-commits AssignRun calls until Close.
func (db *DB) assignLoop() {
	defer db.wg.Done()
	for {
		var batch []*assignReq
		select {
		case r := <-db.assign:
			batch = append(batch, r)
		case <-db.quit:
			return
		}
		// The callers are resolve handlers on the same few Ps: yielding
		// lets those about to call AssignRun join this commit, so one
		// commit (mostly its WAL page writes) serves several runs. That
		// halves its cost per run under load; with nothing else runnable
		// Gosched returns at once.
		for round := 0; len(batch) < maxAssignBatch && round < maxAssignYields; round++ {
			runtime.Gosched()
			n := len(batch)
		drain:
			for len(batch) < maxAssignBatch {
				select {
				case r := <-db.assign:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			if len(batch) == n {
				break
			}
		}
		err := db.writeRelaxed(context.Background(), func(tx *sql.Tx) error {
			ins, sel := tx.Stmt(db.insRun), tx.Stmt(db.selRun)
			defer ins.Close()
			defer sel.Close()
			for _, r := range batch {
				r.err = ins.QueryRow(r.runID, r.label, r.version, us(r.now)).Scan(&r.got)
				if errors.Is(r.err, sql.ErrNoRows) {
					r.err = sel.QueryRow(r.runID, r.label).Scan(&r.got)
				}
				if r.err != nil {
					return r.err
				}
			}
			db.assigned += len(batch)
			if db.assigned >= 1024 {
				// Pruning now and then keeps the table to RunRetention;
				// runs_assigned makes it a range delete.
				db.assigned = 0
				_, err := tx.Exec(`DELETE FROM runs WHERE assigned_at < ?`, us(batch[0].now.Add(-RunRetention)))
				return err
			}
			return nil
		})
		for _, r := range batch {
			if err != nil {
				r.err, r.got = err, ""
			}
			close(r.done)
		}
	}
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
