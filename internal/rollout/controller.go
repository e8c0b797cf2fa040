package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// ControllerLease is the name of the lease the leading controller holds.
const ControllerLease = "controller"

// ControllerOptions configure a Controller; zero values take the defaults.
type ControllerOptions struct {
	// Holder names this replica in the lease and the audit log; required
	// to be unique among replicas (host name + pid is a good choice).
	Holder   string
	Interval time.Duration // between reconcile passes; default 1s
	LeaseTTL time.Duration // default 10s: another replica takes over within it
	Clock    Clock         // default: the Service's clock
	Logger   *slog.Logger  // default: the Service's logger
}

// Controller moves rollouts through their rings. Like an Argo Rollouts
// controller it is a reconcile loop: every pass reads each non-terminal
// rollout and decides from its stored state, the clock, job counts and
// health alone (Step), so it can crash anywhere and the next leader
// resumes where the database says. Writes use the rollout's revision, so a
// controller that lost its lease cannot overwrite a newer decision.
type Controller struct {
	s      *Service
	st     ControllerStore
	opts   ControllerOptions
	leader atomic.Bool
	fence  atomic.Int64
	ticks  atomic.Int64
}

// ControllerStore is what the controller uses beside s: the lease it
// leads by and the list of rollouts still under way (it changes them
// through s).
type ControllerStore interface {
	LeaseStore
	RolloutStore
}

// NewController returns a controller driving s's rollouts in st.
func NewController(s *Service, st ControllerStore, opts ControllerOptions) *Controller {
	if opts.Holder == "" {
		opts.Holder = "controller"
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = s.clock
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	return &Controller{s: s, st: st, opts: opts}
}

// IsLeader reports whether this controller held the lease at its last
// attempt.
func (c *Controller) IsLeader() bool { return c.leader.Load() }

// Fence is the lease's fencing number when this controller last took it.
func (c *Controller) Fence() int64 { return c.fence.Load() }

// Ticks counts reconcile passes run (for metrics).
func (c *Controller) Ticks() int64 { return c.ticks.Load() }

// Run takes or renews the controller lease every Interval and reconciles
// while it leads, until ctx ends; then it releases the lease so another
// replica takes over at once. Errors of single passes are logged, not
// returned: the loop must outlive a database hiccup.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	defer func() {
		if c.leader.Swap(false) {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := c.st.ReleaseLease(rctx, ControllerLease, c.opts.Holder); err != nil {
				c.opts.Logger.Warn("release controller lease", "holder", c.opts.Holder, "err", err)
			}
		}
	}()
	for {
		ok, fence, err := c.st.AcquireLease(ctx, ControllerLease, c.opts.Holder, c.opts.LeaseTTL, c.opts.Clock.Now())
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			// Without a renewed lease we must assume another replica
			// leads once ours expires.
			c.opts.Logger.Warn("acquire controller lease", "holder", c.opts.Holder, "err", err)
			c.leader.Store(false)
		default:
			if was := c.leader.Swap(ok); was != ok {
				c.opts.Logger.Info("controller leadership", "holder", c.opts.Holder, "leader", ok, "fence", fence)
			}
			if ok {
				c.fence.Store(fence)
				if err := c.Tick(ctx); err != nil && ctx.Err() == nil {
					c.opts.Logger.Warn("controller tick", "holder", c.opts.Holder, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick is one reconcile pass over every pending and baking rollout. It
// does not check the lease (Run does); tests call it directly. Each
// rollout is decided independently; the first error is returned after
// all were tried.
func (c *Controller) Tick(ctx context.Context) error {
	c.ticks.Add(1)
	actor := "controller:" + c.opts.Holder
	var rs []Rollout
	err := each(ctx, func(p Page) ([]Rollout, string, error) {
		return c.st.ListRollouts(ctx, "", []State{StatePending, StateBaking, StatePaused, StateHalted}, p)
	}, func(r Rollout) bool { rs = append(rs, r); return true })
	if err != nil {
		return fmt.Errorf("list rollouts to reconcile: %w", err)
	}
	var errs []error
	newest := map[string]string{}
	for _, r := range rs {
		// Newest first. Two active rollouts of one label can only come
		// from two starts racing; the newer one wins, as in Resolve.
		if id, seen := newest[r.Label]; seen {
			_, err := c.s.transition(ctx, actor, r.ID, "rollout.supersede", "superseded by rollout "+id, func(r *Rollout) error {
				if Terminal(r.State) {
					return errNoChange
				}
				r.State, r.Reason = StateSuperseded, "superseded by rollout "+id
				return nil
			})
			if err != nil && !errors.Is(err, errNoChange) {
				errs = append(errs, err)
			}
			continue
		}
		newest[r.Label] = r.ID
		if r.State != StatePending && r.State != StateBaking {
			continue
		}
		if _, _, err := c.s.reconcile(ctx, actor, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
