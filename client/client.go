// Package client is what a CI runner links to use imagegate: Resolve asks
// which version of an image a job gets, Report tells the server how the job
// went.
//
// Both are built so that a runner never stops running jobs because imagegate
// is down:
//
//   - Resolve caches each answer for CacheTTL. When the server cannot be
//     reached (or fails with a 5xx), it answers from what it knows, marking
//     the Resolution with Fallback: first the last answer it got for that
//     org and label ("last"), else the label's default ("default") — the
//     answers for the labels in Options.Labels fetched when the client
//     starts, refreshed by every later answer whose Reason is "default".
//     Only when it knows neither does it return the error. Answers the
//     server gives (an unknown label, a forbidden org) are returned as
//     errors, never masked.
//   - Report queues the event and returns at once. A background loop posts
//     the queue in batches of BatchSize every FlushInterval, retrying with
//     exponential backoff (MinBackoff doubling to MaxBackoff, with jitter)
//     while the server is unreachable or failing, and waiting at least as
//     long as the server's Retry-After (a 429 or 503) asks, up to
//     MaxBackoff. Events beyond MaxPending
//     in memory go to a bounded on-disk spool (SpoolDir), and Close writes
//     what it could not deliver there too; the next client with the same
//     SpoolDir sends them. Retries never double an event: the server keeps
//     one event per JobID.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

// Options configure a Client. Server is required; zero values elsewhere
// take the defaults given.
type Options struct {
	// Server is the imagegate server's URL, such as https://imagegate.example.com.
	Server string
	// Token is a runner token (imagegate token create --role runner).
	Token string
	// HTTPClient sends the requests; one with a 10s timeout when nil.
	HTTPClient *http.Client

	// Labels are the images whose default is fetched when the client
	// starts, for Resolve's fallback.
	Labels []string
	// ProbeOrg is the org the startup fetch resolves for: name one that is
	// in no ring's list and has no pins. Default "imagegate-client-probe".
	ProbeOrg string
	// CacheTTL is how long an answer of Resolve is reused. Default 10s:
	// short, so that a rollback reaches runners within seconds.
	CacheTTL time.Duration

	// BatchSize is the most events one request carries. Default 500.
	BatchSize int
	// FlushInterval is how long an event may wait for its batch to fill.
	// Default 2s.
	FlushInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries of a failed
	// batch. Defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// MaxPending is how many events are held in memory. Default 10000.
	MaxPending int
	// SpoolDir holds events that do not fit in memory and those Close could
	// not deliver (the file events.jsonl). Without it such events are
	// refused with ErrBacklogFull and Close reports them lost.
	SpoolDir string
	// MaxSpoolBytes bounds the spool file. Default 64 MiB.
	MaxSpoolBytes int64

	// Logger receives retries and fallbacks; nothing is logged when nil.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.ProbeOrg == "" {
		o.ProbeOrg = "imagegate-client-probe"
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = 10 * time.Second
	}
	if o.BatchSize == 0 {
		o.BatchSize = 500
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 2 * time.Second
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.MaxPending == 0 {
		o.MaxPending = 10000
	}
	if o.MaxSpoolBytes == 0 {
		o.MaxSpoolBytes = 64 << 20
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Fallbacks a Resolution may carry.
const (
	// FallbackLast: the server was unreachable; this is the last answer
	// for the same org and label.
	FallbackLast = "last"
	// FallbackDefault: the server was unreachable and this org had no
	// answer yet; this is the label's default.
	FallbackDefault = "default"
)

// Resolution is which version of an image a job gets, and why.
type Resolution struct {
	Label   string `json:"label"`
	Version string `json:"version"`
	// Reason is the server's: "pin", "rollout", "control", "default" or
	// "affinity".
	Reason    string `json:"reason"`
	RolloutID string `json:"rolloutId,omitempty"`
	Ring      int    `json:"ring"`
	Detail    string `json:"detail,omitempty"`
	// Fallback is empty for an answer of the server (perhaps cached), else
	// FallbackLast or FallbackDefault.
	Fallback string `json:"fallback,omitempty"`
}

// Job outcomes.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeCanceled  = "canceled"
)

// JobEvent is one job's outcome.
type JobEvent struct {
	// JobID identifies the job uniquely and stably: the server keeps one
	// event per JobID, which is what makes retries safe.
	JobID   string `json:"jobId"`
	Org     string `json:"org"`
	Label   string `json:"label"`
	Version string `json:"version"`
	// Pipeline is the stable id of the pipeline definition
	// (org/repo/.github/workflows/ci.yml); RunID the workflow run.
	Pipeline string `json:"pipeline,omitempty"`
	RunID    string `json:"runId,omitempty"`
	// Ring is the ring the resolve answered (the server corrects it).
	Ring       int       `json:"ring"`
	Outcome    string    `json:"outcome"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMs int64     `json:"durationMs"`
	// ErrorText is the tail of the failed step's log.
	ErrorText string `json:"errorText,omitempty"`
}

var (
	// ErrBacklogFull is returned by Report when the event fits neither in
	// memory nor in the spool: the server has been unreachable for long.
	ErrBacklogFull = errors.New("imagegate client: event backlog full")
	// ErrClosed is returned by Report after Close.
	ErrClosed = errors.New("imagegate client: closed")
)

// Client resolves and reports. It is safe for concurrent use; Close it on
// shutdown to deliver (or spool) the events still queued.
type Client struct {
	opts Options
	api  *apiclient.Client
	log  *slog.Logger

	mu       sync.Mutex
	cache    map[cacheKey]cached
	last     map[[2]string]rollout.Resolution // org, label
	defaults map[string]rollout.Resolution    // label

	q     *queue
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

// maxCached is the cache size past which expired answers are swept.
const maxCached = 10000

type cacheKey struct{ org, label, run string }

type cached struct {
	res rollout.Resolution
	at  time.Time
}

// New starts a client: it fetches the defaults of opts.Labels (a server
// that cannot be reached is logged, not an error: the runner must start
// anyway) and the background loop that delivers events.
func New(ctx context.Context, opts Options) (*Client, error) {
	opts.defaults()
	ac, err := apiclient.New(opts.Server, opts.Token, opts.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("imagegate client: %w", err)
	}
	q, err := newQueue(opts.MaxPending, opts.SpoolDir, opts.MaxSpoolBytes)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts: opts, api: ac, log: opts.Logger,
		cache: map[cacheKey]cached{}, last: map[[2]string]rollout.Resolution{}, defaults: map[string]rollout.Resolution{},
		q: q, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	for _, label := range opts.Labels {
		res, err := ac.Resolve(ctx, opts.ProbeOrg, label, "")
		if err != nil {
			c.log.Warn("imagegate: fetch default", "label", label, "err", err)
			continue
		}
		c.defaults[label] = res
	}
	go c.loop()
	return c, nil
}

// Resolve returns which version of label a job of org gets; runID, when
// set, gives every job of a workflow run the same version. When the server
// cannot be reached it falls back as the package documentation says.
func (c *Client) Resolve(ctx context.Context, org, label, runID string) (Resolution, error) {
	key := cacheKey{org, label, runID}
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && time.Since(e.at) < c.opts.CacheTTL {
		c.mu.Unlock()
		return fromAPI(e.res, ""), nil
	}
	c.mu.Unlock()

	res, err := c.api.Resolve(ctx, org, label, runID)
	if err == nil {
		c.mu.Lock()
		now := time.Now()
		if len(c.cache) >= maxCached {
			// Run ids make keys unbounded: forget what has expired.
			for k, e := range c.cache {
				if now.Sub(e.at) >= c.opts.CacheTTL {
					delete(c.cache, k)
				}
			}
		}
		c.cache[key] = cached{res, now}
		c.last[[2]string{org, label}] = res
		if res.Reason == "default" {
			c.defaults[label] = res
		}
		c.mu.Unlock()
		return fromAPI(res, ""), nil
	}
	if !serverDown(err) {
		return Resolution{}, fmt.Errorf("resolve %s for %s: %w", label, org, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.last[[2]string{org, label}]; ok {
		c.log.Warn("imagegate: resolve from the last answer", "org", org, "label", label, "version", last.Version, "err", err)
		return fromAPI(last, FallbackLast), nil
	}
	if def, ok := c.defaults[label]; ok {
		c.log.Warn("imagegate: resolve to the default", "org", org, "label", label, "version", def.Version, "err", err)
		return fromAPI(def, FallbackDefault), nil
	}
	return Resolution{}, fmt.Errorf("resolve %s for %s (no earlier answer to fall back on): %w", label, org, err)
}

// serverDown tells errors worth a fallback or a retry (no answer, or the
// server failing) from answers (a wrong label, a bad token).
func serverDown(err error) bool {
	if errors.Is(err, apiclient.ErrUnreachable) {
		return true
	}
	var ae *apiclient.Error
	return errors.As(err, &ae) && (ae.Status >= 500 || ae.Status == http.StatusTooManyRequests)
}

// refused tells a batch the server will never take (invalid, too large)
// from one worth retrying (no answer, a failing server, a token being
// rotated).
func refused(err error) bool {
	var ae *apiclient.Error
	return errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusRequestEntityTooLarge ||
		ae.Status == http.StatusUnprocessableEntity)
}

func fromAPI(r rollout.Resolution, fallback string) Resolution {
	return Resolution{Label: r.Label, Version: r.Version, Reason: r.Reason, RolloutID: r.RolloutID, Ring: r.Ring, Detail: r.Detail, Fallback: fallback}
}

// Report queues ev for delivery and returns without waiting for the
// server. It fails only for an event without JobID, after Close, or with
// ErrBacklogFull.
func (c *Client) Report(ctx context.Context, ev JobEvent) error {
	if ev.JobID == "" {
		return errors.New("imagegate client: report: the event has no JobID")
	}
	select {
	case <-c.stop:
		return ErrClosed
	default:
	}
	n, err := c.q.add(toAPI(ev))
	if err != nil {
		return fmt.Errorf("report job %s: %w", ev.JobID, err)
	}
	if n >= c.opts.BatchSize {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func toAPI(e JobEvent) rollout.JobEvent {
	return rollout.JobEvent{JobID: e.JobID, Org: e.Org, Label: e.Label, Version: e.Version, Pipeline: e.Pipeline, RunID: e.RunID,
		Ring: e.Ring, Outcome: e.Outcome, StartedAt: e.StartedAt, DurationMs: e.DurationMs, ErrorText: e.ErrorText}
}

// loop delivers batches until Close.
func (c *Client) loop() {
	defer close(c.done)
	backoff := time.Duration(0)
	t := time.NewTimer(c.opts.FlushInterval)
	defer t.Stop()
	for {
		// While backing off, a full batch waits for the timer too: a
		// fleet of busy runners must not hammer a server that is coming
		// back.
		wake := c.wake
		if backoff > 0 {
			wake = nil
		}
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-wake:
		}
		for {
			err := c.sendBatch(context.Background())
			if err == nil {
				backoff = 0
				if c.q.len() >= c.opts.BatchSize {
					continue // a full batch is waiting: send it now
				}
				t.Reset(c.opts.FlushInterval)
				break
			}
			backoff = c.nextBackoff(backoff)
			wait := c.retryWait(backoff, err)
			c.log.Warn("imagegate: report events, will retry", "in", wait, "pending", c.q.len(), "err", err)
			t.Reset(wait)
			break
		}
	}
}

func (c *Client) nextBackoff(prev time.Duration) time.Duration {
	next := min(max(2*prev, c.opts.MinBackoff), c.opts.MaxBackoff)
	// Jitter keeps a fleet of runners from retrying in step after an outage.
	return next/2 + rand.N(next/2+1)
}

// retryWait is how long to wait after err: the backoff, or the server's
// Retry-After when that is longer (a rate-limited runner that retried
// sooner would only be refused again), bounded by MaxBackoff. The jitter
// spreads a fleet told the same delay by a 503.
func (c *Client) retryWait(backoff time.Duration, err error) time.Duration {
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.RetryAfter <= backoff {
		return backoff
	}
	ra := min(ae.RetryAfter, c.opts.MaxBackoff)
	return max(backoff, ra+rand.N(ra/10+1))
}

// errEmpty: nothing to send.
var errEmpty = errors.New("nothing to send")

// sendBatch posts the head of the queue; the events leave the queue only
// once the server has answered that it stored them.
func (c *Client) sendBatch(ctx context.Context) error {
	batch, err := c.q.head(c.opts.BatchSize)
	if err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}
	if _, err := c.api.PostEvents(ctx, batch); err != nil {
		if refused(err) {
			// The server refused the batch (an invalid event): retrying
			// would block every later event behind it, so it is dropped.
			c.log.Error("imagegate: events refused, dropped", "events", len(batch), "err", err)
		} else {
			return err
		}
	}
	return c.q.pop(len(batch))
}

// Close stops the background loop, delivers the queued events until ctx
// ends and writes those it could not deliver to the spool. The error says
// how many events were spooled or lost.
func (c *Client) Close(ctx context.Context) error {
	var err error
	c.close.Do(func() {
		close(c.stop)
		<-c.done
		backoff := time.Duration(0)
	deliver:
		for c.q.len() > 0 && ctx.Err() == nil {
			if e := c.sendBatch(ctx); e != nil {
				backoff = c.nextBackoff(backoff)
				select {
				case <-ctx.Done():
					break deliver
				case <-time.After(c.retryWait(backoff, e)):
				}
			}
		}
		err = c.q.close()
	})
	return err
}
