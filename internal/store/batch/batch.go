// Package batch group-commits run assignments (rollout.RunStore.AssignRun)
// over any store, the way restic wraps a backend with retry: the store
// writes a batch of assignments in one relaxed commit and knows nothing of
// who is waiting; Runs collects concurrent callers into those batches and
// applies the pruning rule of rollout (RunRetention, PruneRunsEvery).
//
// AssignRun is on the resolve path of every new workflow run. One commit
// per run would cost a WAL write (SQLite) or a round trip and a WAL flush
// (PostgreSQL) each; one commit for all the callers waiting costs about
// one, so throughput grows with load instead of latency.
package batch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Assignment is one AssignRun call.
type Assignment struct {
	RunID, Label, Version string
	At                    time.Time
	// Got is set by Writer.AssignRuns: the version stored for (RunID,
	// Label), Version when this assignment was the first.
	Got string
}

// Batch is what one Writer.AssignRuns call writes.
type Batch struct {
	Assignments []Assignment
	// PruneBefore, when not zero, asks the writer to drop as well the
	// assignments made before it, in the same commit when it can.
	PruneBefore time.Time
}

// Writer is the store's side: rows, no policy.
type Writer interface {
	// AssignRuns records every assignment of b, first write wins, and
	// sets each one's Got; an assignment whose (RunID, Label) is stored
	// already, or appears earlier in b, gets the version stored first.
	// It need not be durable when it returns (a crash of the machine or
	// database server may forget the last batches) but must be atomic
	// per assignment. On error no Got may be trusted. Safe for
	// concurrent use, also by several processes on one database.
	AssignRuns(ctx context.Context, b *Batch) error
}

// ErrClosed is returned by AssignRun after Close.
var ErrClosed = errors.New("store closed")

// Options tune Runs; the zero value is SQLite's one writer.
type Options struct {
	// Committers is how many batches may be written at once: 1 for a
	// database with one writer (SQLite), more for one whose connections
	// write in parallel (PostgreSQL). Default 1.
	Committers int
}

// maxBatch bounds one group commit, so its latency stays small.
const maxBatch = 512

// maxYields bounds how often a committer yields for more callers before
// committing; it stops earlier when a yield brought none.
const maxYields = 4

// Runs group-commits AssignRun calls over a Writer until Close.
type Runs struct {
	w       Writer
	reqs    chan *request
	quit    chan struct{}
	wg      sync.WaitGroup
	closing sync.Once

	mu       sync.Mutex
	assigned int // assignments since the last prune
}

type request struct {
	a    Assignment
	err  error
	done chan struct{}
}

// New starts the committers of w.
func New(w Writer, opts Options) *Runs {
	n := max(opts.Committers, 1)
	r := &Runs{w: w, reqs: make(chan *request, maxBatch), quit: make(chan struct{})}
	r.wg.Add(n)
	for range n {
		go r.commit()
	}
	return r
}

// AssignRun implements rollout.RunStore.AssignRun: it returns once the
// batch holding the call is written, or when ctx is done (the assignment
// may then still be written).
func (r *Runs) AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error) {
	req := &request{a: Assignment{RunID: runID, Label: label, Version: version, At: now}, done: make(chan struct{})}
	select {
	case r.reqs <- req:
	case <-ctx.Done():
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, ctx.Err())
	case <-r.quit:
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, ErrClosed)
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, ctx.Err())
	case <-r.quit:
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, ErrClosed)
	}
	if req.err != nil {
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, req.err)
	}
	return req.a.Got, nil
}

// Close stops the committers; calls still waiting fail with ErrClosed.
// The Writer is the caller's to close, after Close.
func (r *Runs) Close() error {
	r.closing.Do(func() {
		close(r.quit)
		r.wg.Wait()
	})
	return nil
}

func (r *Runs) commit() {
	defer r.wg.Done()
	for {
		var reqs []*request
		select {
		case req := <-r.reqs:
			reqs = append(reqs, req)
		case <-r.quit:
			return
		}
		// The callers are resolve handlers on the same few Ps: yielding
		// lets those about to call AssignRun join this commit, so one
		// commit (mostly its WAL page writes) serves several runs. That
		// halves its cost per run under load; with nothing else runnable
		// Gosched returns at once.
		for round := 0; len(reqs) < maxBatch && round < maxYields; round++ {
			runtime.Gosched()
			n := len(reqs)
		drain:
			for len(reqs) < maxBatch {
				select {
				case req := <-r.reqs:
					reqs = append(reqs, req)
				default:
					break drain
				}
			}
			if len(reqs) == n {
				break
			}
		}
		b := &Batch{Assignments: make([]Assignment, len(reqs))}
		for i, req := range reqs {
			b.Assignments[i] = req.a
		}
		prune := r.count(len(reqs))
		if prune {
			b.PruneBefore = rollout.RunsExpired(reqs[0].a.At)
		}
		// Not the callers' context: one caller giving up must not fail
		// the others' assignments.
		err := r.w.AssignRuns(context.Background(), b)
		if err != nil && prune {
			r.pruneNext()
		}
		for i, req := range reqs {
			if err != nil {
				req.err = err
			} else {
				req.a.Got = b.Assignments[i].Got
			}
			close(req.done)
		}
	}
}

// count adds n assignments and reports whether this batch should prune
// (every rollout.PruneRunsEvery assignments).
func (r *Runs) count(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.assigned += n
	if r.assigned >= rollout.PruneRunsEvery {
		r.assigned = 0
		return true
	}
	return false
}

// pruneNext makes the next batch prune, after one that was to prune failed.
func (r *Runs) pruneNext() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.assigned = max(r.assigned, rollout.PruneRunsEvery-1)
}
