package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// SenderOptions configure a Sender; zero values take the defaults.
type SenderOptions struct {
	// Holder names this replica in the outbox's claims; required, and
	// unique among replicas (host name + pid).
	Holder string
	// BaseURL is the server's external URL (https://imagegate.example.com);
	// alert links, which are API paths, are made absolute with it so chat
	// clients can open them. Empty: links stay paths.
	BaseURL string
	// Client sends the POSTs; default: an http.Client that does not follow
	// redirects (a redirected POST may arrive as a GET without its body
	// and still answer 2xx, which would count as delivered).
	Client *http.Client
	// Timeout bounds each POST; default 10s.
	Timeout time.Duration
	// LeaseFor is how long a claim keeps other replicas off an item;
	// default 6×Timeout, and at least 2×Timeout (an item must be acked or
	// failed well before another replica may take it).
	LeaseFor time.Duration
	// Interval is the pause between passes that found nothing to send;
	// default 1s.
	Interval time.Duration
	// Batch is how many items one pass claims and sends concurrently;
	// default 16.
	Batch int
	// MinBackoff and MaxBackoff bound the wait between attempts of one
	// item; defaults 1s and 10min (see Backoff).
	MinBackoff, MaxBackoff time.Duration
	Clock                  rollout.Clock // default: the system clock
	Logger                 *slog.Logger  // default: discards
	// Jitter returns a number in [0,1) for Backoff; default math/rand/v2.
	Jitter func() float64
}

// Sender delivers the outbox: claim due items, POST each in its format,
// Ack on a 2xx, Fail with a backoff otherwise. Every replica may run one;
// the outbox's claims keep them off each other's items.
type Sender struct {
	st   rollout.OutboxStore
	opts SenderOptions
	base *url.URL
}

// NewSender returns a Sender over st. ErrInvalid for options that cannot
// work (no holder, a lease shorter than two timeouts, a bad BaseURL).
func NewSender(st rollout.OutboxStore, opts SenderOptions) (*Sender, error) {
	if opts.Holder == "" {
		return nil, fmt.Errorf("alert sender: %w: a holder name is required (host name + pid)", rollout.ErrInvalid)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.LeaseFor <= 0 {
		opts.LeaseFor = 6 * opts.Timeout
	}
	if opts.LeaseFor < 2*opts.Timeout {
		return nil, fmt.Errorf("alert sender: %w: the claim lease %v must be at least twice the POST timeout %v, or two replicas could send one alert",
			rollout.ErrInvalid, opts.LeaseFor, opts.Timeout)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 16
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Minute
	}
	if opts.MaxBackoff < opts.MinBackoff {
		return nil, fmt.Errorf("alert sender: %w: max backoff %v is below min backoff %v", rollout.ErrInvalid, opts.MaxBackoff, opts.MinBackoff)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	s := &Sender{st: st, opts: opts}
	if opts.BaseURL != "" {
		u, err := url.Parse(opts.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alert sender: %w: base URL %q must be an absolute http:// or https:// URL", rollout.ErrInvalid, opts.BaseURL)
		}
		s.base = u
	}
	return s, nil
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Run delivers until ctx ends, then returns nil. A pass that claimed a
// full batch is followed at once by the next; otherwise it waits
// Interval. Store errors are logged, not returned: the loop must outlive
// a database hiccup, and the outbox keeps what it could not send.
func (s *Sender) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := s.Deliver(ctx)
		if err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("deliver alerts", "holder", s.opts.Holder, "err", err)
		}
		wait := s.opts.Interval
		if err == nil && n == s.opts.Batch {
			wait = 0
		}
		t.Reset(wait)
	}
}

// Deliver is one pass: claim up to Batch due items and send them
// concurrently. It returns how many it claimed, and the store's errors
// (a receiver's failure is no error of the pass: it is recorded on the
// item and retried). Tests call it directly with a hand-moved clock.
func (s *Sender) Deliver(ctx context.Context) (int, error) {
	items, err := s.st.Claim(ctx, s.opts.Holder, s.opts.Clock.Now(), s.opts.LeaseFor, s.opts.Batch)
	if err != nil {
		return 0, fmt.Errorf("claim alerts: %w", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(items))
	for i, it := range items {
		wg.Go(func() { errs[i] = s.deliver(ctx, it) })
	}
	wg.Wait()
	return len(items), errors.Join(errs...)
}

// deliver sends one item and records the outcome. The outcome is written
// even when ctx ended meanwhile (shutdown): a delivered item left
// unacknowledged would be sent again by another replica, and one whose
// POST was cut short is released for the next replica at once rather
// than when the claim expires.
func (s *Sender) deliver(ctx context.Context, it rollout.OutboxItem) error {
	target := Target{URL: it.URL, Format: it.Format}
	retryAfter, err := s.post(ctx, it)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.Timeout)
	defer cancel()
	now := s.opts.Clock.Now()
	if err == nil {
		if err := s.st.Ack(rctx, it.ID, now); err != nil {
			return fmt.Errorf("alert %s delivered to %s but not recorded (it may be sent again): %w", it.Key, target.Redacted(), err)
		}
		s.opts.Logger.Info("alert delivered", "key", it.Key, "target", target.Redacted(), "format", it.Format, "attempts", it.Attempts)
		return nil
	}
	next := now.Add(Backoff(it.Attempts, s.opts.MinBackoff, s.opts.MaxBackoff, s.opts.Jitter()))
	if retryAfter > 0 {
		next = now.Add(min(max(retryAfter, next.Sub(now)), s.opts.MaxBackoff))
	}
	if ctx.Err() != nil {
		next = now
	}
	s.opts.Logger.Warn("alert not delivered", "key", it.Key, "target", target.Redacted(), "format", it.Format,
		"attempts", it.Attempts, "retry_at", next, "err", err)
	if ferr := s.st.Fail(rctx, it.ID, s.opts.Holder, truncate(err.Error(), 1024), next); ferr != nil && !errors.Is(ferr, rollout.ErrConflict) {
		return fmt.Errorf("alert %s: record failed delivery: %w", it.Key, ferr)
	}
	return nil
}

// post sends it once. A non-nil error means not delivered; retryAfter is
// the receiver's Retry-After (429, 503) when it gave one in seconds.
func (s *Sender) post(ctx context.Context, it rollout.OutboxItem) (retryAfter time.Duration, err error) {
	target := Target{URL: it.URL, Format: it.Format}
	body, err := Render(it.Format, it.Alert, s.link(it.Alert.Link))
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, it.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", target.Redacted(), redactErr(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "imagegate-alert/1")
	req.Header.Set("X-Imagegate-Alert-Key", it.Key)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", target.Redacted(), redactErr(err))
	}
	defer resp.Body.Close()
	// The start of the body says why (Slack answers "invalid_blocks");
	// the rest is drained so the connection can be reused.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && secs > 0 {
			retryAfter = time.Duration(secs) * time.Second
		}
	}
	msg := strings.TrimSpace(string(snippet))
	if msg != "" {
		msg = ": " + msg
	}
	return retryAfter, fmt.Errorf("POST %s: %s%s", target.Redacted(), resp.Status, msg)
}

// redactErr drops the URL from net/http's errors, which quote it whole
// (secret included).
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (s *Sender) link(path string) string {
	if s.base == nil || !strings.HasPrefix(path, "/") {
		return path
	}
	return strings.TrimSuffix(s.base.String(), "/") + path
}

// Backoff is the wait after the attempt-th failed attempt (1-based):
// exponential with "equal jitter",
//
//	d    = min(maxWait, minWait · 2^(attempt−1))
//	wait = clamp(d/2 + u·d/2, minWait, maxWait),  u ∈ [0,1)
//
// so waits double (1s, 2s, 4s, … with the defaults) up to maxWait (10min),
// spread over the upper half of each step so replicas that failed together
// do not retry together, and never shorter than minWait.
func Backoff(attempt int, minWait, maxWait time.Duration, u float64) time.Duration {
	d := maxWait
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 62 {
		if m := minWait << (attempt - 1); m > 0 && m>>(attempt-1) == minWait && m < maxWait {
			d = m
		}
	}
	wait := d/2 + time.Duration(u*float64(d/2))
	return min(max(wait, minWait), maxWait)
}
