package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// AssignRuns writes b in one relaxed transaction, an assignment after the
// other, so a run repeated in b finds its first row.
func (w runRows) AssignRuns(ctx context.Context, b *batch.Batch) error {
	db := w.db
	return db.writeRelaxed(ctx, func(tx *sql.Tx) error {
		ins, sel := tx.Stmt(db.insRun), tx.Stmt(db.selRun)
		defer ins.Close()
		defer sel.Close()
		for i := range b.Assignments {
			a := &b.Assignments[i]
			err := ins.QueryRowContext(ctx, a.RunID, a.Label, a.Version, us(a.At)).Scan(&a.Got)
			if errors.Is(err, sql.ErrNoRows) {
				err = sel.QueryRowContext(ctx, a.RunID, a.Label).Scan(&a.Got)
			}
			if err != nil {
				return err
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
