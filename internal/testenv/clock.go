package testenv

import (
	"sync"
	"time"
)

// Clock is a clock the test moves by hand. It satisfies the domain's
// clock interface (rollout.Clock, and server.Options.Now as c.Now) and is
// safe for concurrent use: a service, its controller and an HTTP server
// read it from their own goroutines while the test advances it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
