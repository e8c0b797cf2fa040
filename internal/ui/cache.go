package ui

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// staleCache keeps the last answer of an expensive read per key (a
// label's status, which runs the health gate; a rollout's analysis, which
// reads every signature of a ring) and serves it while it is younger than
// ttl. An older answer is served once more while one background call
// refreshes it, so a page waits for the analysis only the first time a
// key is asked for, and the pages say how old what they show is. Changes
// made through the dashboard drop the label's entries at once.
//
// An answer that took long to compute is kept longer: it goes stale only
// after ten times its cost, so refreshing an analysis that takes seconds
// never keeps a core busy (at most a tenth of one per key).
//
// Ages are measured on the process's clock, not on Options.Now: they
// bound the cost of reads, not what the domain means by time.
type staleCache[V any] struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]*staleEntry[V]
}

type staleEntry[V any] struct {
	v          V
	at         time.Time
	cost       time.Duration
	refreshing bool
}

func newStaleCache[V any](ttl time.Duration, max int) *staleCache[V] {
	return &staleCache[V]{ttl: ttl, max: max, m: map[string]*staleEntry[V]{}}
}

// get returns key's value and when it was read.
func (c *staleCache[V]) get(ctx context.Context, key string, fetch func(ctx context.Context) (V, error)) (V, time.Time, error) {
	c.mu.Lock()
	e := c.m[key]
	switch {
	case e == nil:
		c.mu.Unlock()
		return c.load(ctx, key, fetch)
	case time.Since(e.at) >= max(c.ttl, 10*e.cost) && !e.refreshing:
		e.refreshing = true
		go func() {
			// Detached from the request, which may end first; bounded.
			bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if _, _, err := c.load(bg, key, fetch); err != nil {
				c.mu.Lock()
				if cur := c.m[key]; cur == e {
					e.refreshing = false
				}
				c.mu.Unlock()
			}
		}()
	}
	v, at := e.v, e.at
	c.mu.Unlock()
	return v, at, nil
}

func (c *staleCache[V]) load(ctx context.Context, key string, fetch func(ctx context.Context) (V, error)) (V, time.Time, error) {
	start := time.Now()
	v, err := fetch(ctx)
	if err != nil {
		var zero V
		return zero, time.Time{}, err
	}
	at := time.Now()
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[key] = &staleEntry[V]{v: v, at: at, cost: at.Sub(start)}
	c.mu.Unlock()
	return v, at, nil
}

// drop forgets key, so the next get reads afresh.
func (c *staleCache[V]) drop(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// status is the Service's status of label, through the cache.
func (h *Handler) status(ctx context.Context, label string) (rollout.LabelStatus, time.Time, error) {
	return h.statuses.get(ctx, label, func(ctx context.Context) (rollout.LabelStatus, error) { return h.svc.Status(ctx, label) })
}

// newestVersion is label's most recently pushed version (nil when it has
// none), through the cache: the Images page shows one per label, and
// asking the store for each of them on every load is most of its cost.
func (h *Handler) newestVersion(ctx context.Context, label string) (*rollout.Version, error) {
	v, _, err := h.newest.get(ctx, label, func(ctx context.Context) (*rollout.Version, error) {
		vs, _, err := h.svc.Versions(ctx, label, rollout.Page{Limit: 1})
		if err != nil || len(vs) == 0 {
			return nil, err
		}
		return &vs[0], nil
	})
	return v, err
}

// signaturePage is one page of a label's (and version's) signatures.
type signaturePage struct {
	sigs []rollout.Signature
	next string
}

// signatures is a page of the Service's signatures, through the cache:
// they change only when ingest flushes its aggregates, and at a million
// events the store's answer costs more than the rest of the page.
func (h *Handler) signatures(ctx context.Context, label, version, after string) (signaturePage, time.Time, error) {
	return h.sigPages.get(ctx, label+"\x00"+version+"\x00"+after, func(ctx context.Context) (signaturePage, error) {
		sigs, next, err := h.svc.SignaturesWithTrend(ctx, label, version, sparkWindow, rollout.Page{After: after, Limit: signaturesPerPage})
		return signaturePage{sigs, next}, err
	})
}

// analysis is the Service's analysis of rollout id, through the cache.
func (h *Handler) analysis(ctx context.Context, id string) (rollout.RolloutAnalysis, time.Time, error) {
	return h.analyses.get(ctx, id, func(ctx context.Context) (rollout.RolloutAnalysis, error) { return h.svc.Analysis(ctx, id) })
}

// ringTelemetry is the Service's telemetry of a ring, through the cache.
func (h *Handler) ringTelemetry(ctx context.Context, id string, ring int) (rollout.Telemetry, error) {
	t, _, err := h.telemetry.get(ctx, fmt.Sprint(id, "/", ring), func(ctx context.Context) (rollout.Telemetry, error) {
		return h.svc.RingTelemetry(ctx, id, ring)
	})
	return t, err
}

// ringTrend is the Service's trend of a ring, through the cache.
func (h *Handler) ringTrend(ctx context.Context, id string, ring int) (rollout.RingTrend, error) {
	t, _, err := h.trends.get(ctx, fmt.Sprint(id, "/", ring), func(ctx context.Context) (rollout.RingTrend, error) {
		return h.svc.RingTrend(ctx, id, ring)
	})
	return t, err
}

// changed drops what the dashboard remembers of label and its rollout
// after a change made through it, so the next page shows the change.
func (h *Handler) changed(label, rolloutID string) {
	h.statuses.drop(label)
	h.newest.drop(label)
	if rolloutID != "" {
		h.analyses.drop(rolloutID)
	}
}
