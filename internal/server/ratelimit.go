package server

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/imagegate/imagegate/internal/api"
)

// RateLimit is a token bucket: Rate requests per second on average, bursts
// of up to Burst. A zero Rate means no limit.
type RateLimit struct {
	Rate  float64
	Burst int
}

// RateLimits bound each token's requests. Runners call resolve and post
// events once per CI job, so those two routes draw on a bucket of their
// own (Hot) and a busy fleet never starves the operators' API calls, nor
// the other way round.
type RateLimits struct {
	API RateLimit
	Hot RateLimit
}

// limiter holds one bucket per token and class (hot or not). Buckets live
// as long as the server: there is one per token ever used, which the
// token table bounds.
type limiter struct {
	limits RateLimits
	now    func() time.Time
	mu     sync.Mutex
	bucket map[bucketKey]*rate.Limiter
}

type bucketKey struct {
	token string
	hot   bool
}

func newLimiter(l RateLimits, now func() time.Time) *limiter {
	return &limiter{limits: l, now: now, bucket: map[bucketKey]*rate.Limiter{}}
}

// rateLimited is a refused request; writeError turns it into 429 with
// Retry-After.
type rateLimited struct {
	retryAfter time.Duration
	hot        bool
}

func (e *rateLimited) Error() string {
	what := "API requests"
	if e.hot {
		what = "resolve and event requests"
	}
	return fmt.Sprintf("this token is over its rate of %s; retry in %v", what, e.retryAfter.Round(time.Millisecond))
}

func (e *rateLimited) Unwrap() error { return api.ErrRateLimited }

// retryAfterHeader is Retry-After in whole seconds, rounded up so a client
// that waits that long finds a token in the bucket.
func (e *rateLimited) retryAfterHeader() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.retryAfter.Seconds()))))
}

// allow takes one request from token's bucket of the class, or says how
// long until one is available.
func (l *limiter) allow(token string, hot bool) error {
	if l == nil {
		return nil
	}
	lim := l.limits.API
	if hot {
		lim = l.limits.Hot
	}
	if lim.Rate <= 0 {
		return nil
	}
	k := bucketKey{token, hot}
	l.mu.Lock()
	b, ok := l.bucket[k]
	if !ok {
		b = rate.NewLimiter(rate.Limit(lim.Rate), max(1, lim.Burst))
		l.bucket[k] = b
	}
	l.mu.Unlock()
	now := l.now()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		// Give the token back: a refused request must not push the next
		// allowed one further out.
		r.CancelAt(now)
		return &rateLimited{retryAfter: d, hot: hot}
	}
	return nil
}

var _ error = (*rateLimited)(nil)
