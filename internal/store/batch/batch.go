// Package batch group-commits concurrent writes over any store, the way
// restic wraps a backend with retry: the store writes a group of calls in
// one commit and knows nothing of who is waiting; Group collects
// concurrent callers into those groups. Runs applies it to run
// assignments (rollout.RunStore.AssignRun) with the pruning rule of
// rollout (RunRetention, PruneRunsEvery); a store's event ingest uses
// Group directly.
//
// AssignRun is on the resolve path of every new workflow run, event
// ingest on every runner's report. One commit per call would cost a WAL
// write and an fsync (SQLite) or a round trip and a WAL flush
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

// Options tune Runs and Group; the zero value is SQLite's one writer.
type Options struct {
	// Committers is how many batches may be written at once: 1 for a
	// database with one writer (SQLite), more for one whose connections
	// write in parallel (PostgreSQL). Default 1.
	Committers int
	// MaxSize bounds the summed size of the calls one commit writes, so
	// its latency stays small (a single larger call is written alone).
	// Default 512.
	MaxSize int
}

// maxBatch is MaxSize's default.
const maxBatch = 512

// maxYields bounds how often a committer yields for more callers before
// committing; it stops earlier when a yield brought none.
const maxYields = 4

// Group group-commits calls of one kind over a write function until
// Close. Items are usually pointers, so that write can hand each caller
// its result.
type Group[T any] struct {
	write   func(ctx context.Context, items []T) error
	size    func(T) int
	max     int
	reqs    chan *call[T]
	quit    chan struct{}
	wg      sync.WaitGroup
	closing sync.Once
}

type call[T any] struct {
	item T
	err  error
	done chan struct{}
}

// NewGroup starts the committers of write, which must write every item
// of a group in one commit, or fail them all (it may set errors of its
// own per item, in the items, and return nil). size is an item's share of
// Options.MaxSize; nil counts each item as 1. write gets a context
// without the callers' cancellation: one caller giving up must not fail
// the others.
func NewGroup[T any](write func(ctx context.Context, items []T) error, size func(T) int, opts Options) *Group[T] {
	n := max(opts.Committers, 1)
	if size == nil {
		size = func(T) int { return 1 }
	}
	limit := opts.MaxSize
	if limit <= 0 {
		limit = maxBatch
	}
	g := &Group[T]{write: write, size: size, max: limit, reqs: make(chan *call[T], min(limit, maxBatch)), quit: make(chan struct{})}
	g.wg.Add(n)
	for range n {
		go g.commit()
	}
	return g
}

// Do returns once the group holding item is written, with write's error,
// or when ctx is done (item may then still be written).
func (g *Group[T]) Do(ctx context.Context, item T) error {
	c := &call[T]{item: item, done: make(chan struct{})}
	select {
	case g.reqs <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.quit:
		return ErrClosed
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	case <-g.quit:
		return ErrClosed
	}
}

// Close stops the committers; calls still waiting fail with ErrClosed.
func (g *Group[T]) Close() error {
	g.closing.Do(func() {
		close(g.quit)
		g.wg.Wait()
	})
	return nil
}

func (g *Group[T]) commit() {
	defer g.wg.Done()
	var next *call[T] // taken from the queue, too big for the last group
	for {
		var calls []*call[T]
		size := 0
		if next != nil {
			calls, size, next = append(calls, next), g.size(next.item), nil
		} else {
			select {
			case c := <-g.reqs:
				calls, size = append(calls, c), g.size(c.item)
			case <-g.quit:
				return
			}
		}
		// The callers are handlers on the same few Ps: yielding lets
		// those about to call join this commit, so one commit (mostly
		// its WAL page writes) serves several calls. That halves its
		// cost per call under load; with nothing else runnable Gosched
		// returns at once.
		for round := 0; size < g.max && next == nil && round < maxYields; round++ {
			runtime.Gosched()
			n := len(calls)
		drain:
			for size < g.max {
				select {
				case c := <-g.reqs:
					s := g.size(c.item)
					if size+s > g.max {
						next = c // the next group's first
						break drain
					}
					calls, size = append(calls, c), size+s
				default:
					break drain
				}
			}
			if len(calls) == n {
				break
			}
		}
		items := make([]T, len(calls))
		for i, c := range calls {
			items[i] = c.item
		}
		err := g.write(context.Background(), items)
		for _, c := range calls {
			c.err = err
			close(c.done)
		}
	}
}

// Runs group-commits AssignRun calls over a Writer until Close.
type Runs struct {
	w Writer
	g *Group[*Assignment]

	mu       sync.Mutex
	assigned int // assignments since the last prune
}

// New starts the committers of w.
func New(w Writer, opts Options) *Runs {
	r := &Runs{w: w}
	r.g = NewGroup(r.write, nil, opts)
	return r
}

// AssignRun implements rollout.RunStore.AssignRun: it returns once the
// batch holding the call is written, or when ctx is done (the assignment
// may then still be written).
func (r *Runs) AssignRun(ctx context.Context, runID, label, version string, now time.Time) (string, error) {
	a := &Assignment{RunID: runID, Label: label, Version: version, At: now}
	if err := r.g.Do(ctx, a); err != nil {
		return "", fmt.Errorf("assign run %s of %s: %w", runID, label, err)
	}
	return a.Got, nil
}

// Close stops the committers; calls still waiting fail with ErrClosed.
// The Writer is the caller's to close, after Close.
func (r *Runs) Close() error { return r.g.Close() }

func (r *Runs) write(ctx context.Context, as []*Assignment) error {
	b := &Batch{Assignments: make([]Assignment, len(as))}
	for i, a := range as {
		b.Assignments[i] = *a
	}
	prune := r.count(len(as))
	if prune {
		b.PruneBefore = rollout.RunsExpired(as[0].At)
	}
	err := r.w.AssignRuns(ctx, b)
	if err != nil {
		if prune {
			r.pruneNext()
		}
		return err
	}
	for i, a := range as {
		a.Got = b.Assignments[i].Got
	}
	return nil
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
