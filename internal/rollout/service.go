package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ServiceOptions configure a Service; zero values take the defaults noted.
type ServiceOptions struct {
	Clock  Clock        // default SystemClock
	Health Health       // nil: every ring is healthy (bake time and MinJobs still gate)
	Logger *slog.Logger // default: discard
	// ExpeditedBakeFactor multiplies the bake times of an expedited
	// rollout (hotfix) whose request names no bake time; default 0.1.
	ExpeditedBakeFactor float64
	// PinExpiryWarning flags pins that lapse within it; default 72h.
	PinExpiryWarning time.Duration
	// AutoRollback rolls every rollout back, instead of halting it, when
	// the health gate finds it unhealthy; StartRequest.AutoRollback asks
	// the same for one rollout. Rollouts started under the policy store it
	// (Rollout.AutoRollback), so it holds on replicas configured without it.
	AutoRollback bool
	// RefreshInterval is how often Resolve's routing table checks
	// Store.Generation for changes made by other replicas; default 100ms.
	RefreshInterval time.Duration
	// FlushInterval is how often served counts are written; default 5s.
	FlushInterval time.Duration
	// Signer gives failed jobs' error texts their signature; nil stores
	// no signatures (exposure is still counted).
	Signer Signer
	// AllowUnknownGate lets a version without a check report (gate
	// unknown) roll out without Force, as a passed one does; the
	// rollout.start audit entry then records "unknownGateAllowed". Off, an
	// unknown gate needs Force with a reason, like a failed one.
	AllowUnknownGate bool
	// Analyzer answers Service.Analysis (the API's per-ring analysis);
	// nil: ErrPrecondition. TelemetryHealth is one.
	Analyzer RingAnalyzer
	// Notifier is told of every decision of the health gate the
	// controller acted on (halt, rollback) or recorded under dry-run; nil
	// tells no one. See Notifier.
	Notifier Notifier
}

// Notifier is where a decision would enqueue its alerts (issue 7's
// outbox).
//
// Contract: Notify is called once per decision, after the decision and
// its audit entry are stored, from the controller's goroutine: it must
// return quickly (enqueue durably, deliver elsewhere) and be safe for
// concurrent use (replicas' Services are distinct, but Promote also
// decides). An error is logged and never undoes the decision; a crash
// between the decision and Notify loses that notification, so an
// outbox wants to be written in the same transaction eventually.
type Notifier interface {
	Notify(ctx context.Context, n Notice) error
}

// Notice is a decision to alert about.
type Notice struct {
	// Action: ActionRollback, ActionHalt, or ActionDryRun (would have
	// acted).
	Action  string       `json:"action"`
	Rollout Rollout      `json:"rollout"`
	Ring    int          `json:"ring"`
	Reason  string       `json:"reason"`
	Health  HealthResult `json:"health"`
	At      time.Time    `json:"at"`
}

// StartRequest asks for a rollout of Label at Version.
type StartRequest struct {
	Label   string `json:"label"`
	Version string `json:"version"`
	// Expedited (a hotfix) multiplies bake times by
	// ServiceOptions.ExpeditedBakeFactor; every gate still applies.
	Expedited bool `json:"expedited"`
	// BakeTimes overrides bake times by ring name (taken as given, not
	// multiplied).
	BakeTimes map[string]time.Duration `json:"bakeTimes,omitempty"`
	// Force rolls out a version whose gate failed; ForceReason is required
	// with it and kept in the audit log.
	Force       bool   `json:"force"`
	ForceReason string `json:"forceReason,omitempty"`
	// AutoRollback rolls back instead of halting when health fails.
	AutoRollback bool `json:"autoRollback"`
	// Reason is why the rollout starts (optional; a hotfix's from the
	// dashboard), kept in the rollout.start audit entry beside any
	// ForceReason.
	Reason string `json:"reason,omitempty"`
}

// PinView is a pin as listed, with its expiry judged as of now.
type PinView struct {
	Pin
	Expired     bool `json:"expired"`
	ExpiresSoon bool `json:"expiresSoon"`
}

// Service is the control plane's logic over a Store: it validates and
// audits every change, and answers Resolve from an in-memory routing table
// refreshed when Store.Generation moves. Safe for concurrent use; several
// Services (replicas) may share one database.
type Service struct {
	st     Store
	clock  Clock
	health Health
	log    *slog.Logger
	opts   ServiceOptions

	table     atomic.Pointer[routingTable]
	refreshMu sync.Mutex
	runs      runCache
	served    sync.Map // servedKey -> *atomic.Int64
	flushMu   sync.Mutex
	timelines timelines // rollouts by label, for reading job events
	// configRings are the labels whose ring plan the serve config manages
	// (see ApplyConfigRings).
	configRings atomic.Pointer[map[string]bool]
	dryRuns     sync.Map // dryRunKey -> true: would-be decisions recorded

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

type routingTable struct {
	gen    int64
	routes map[string]*Route
}

type servedKey struct {
	label, version, reason string
	ring                   int
}

// NewService loads the routing table (failing when the store cannot be
// read) and starts the background refresh and flush, which Close stops.
// The Service does not own st: close it after the Service.
func NewService(ctx context.Context, st Store, opts ServiceOptions) (*Service, error) {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ExpeditedBakeFactor <= 0 {
		opts.ExpeditedBakeFactor = 0.1
	}
	if opts.PinExpiryWarning <= 0 {
		opts.PinExpiryWarning = 72 * time.Hour
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = 100 * time.Millisecond
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 5 * time.Second
	}
	s := &Service{st: st, clock: opts.Clock, health: opts.Health, log: opts.Logger, opts: opts,
		runs: runCache{max: 100_000}, done: make(chan struct{})}
	s.table.Store(&routingTable{gen: -1})
	if err := s.refresh(ctx); err != nil {
		return nil, err
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	go s.background(bg)
	return s, nil
}

func (s *Service) background(ctx context.Context) {
	defer close(s.done)
	refresh := time.NewTicker(s.opts.RefreshInterval)
	defer refresh.Stop()
	flush := time.NewTicker(s.opts.FlushInterval)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("refresh routing table", "err", err)
			}
		case <-flush.C:
			if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("flush served counts", "err", err)
			}
		}
	}
}

// Close stops the background work and flushes served counts. It does not
// close the Store.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.Flush(ctx)
	})
	return err
}

// refresh rebuilds the routing table when the store's generation moved.
// Every write of this Service calls it before returning, so the next
// Resolve through this replica sees the write.
func (s *Service) refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	// Read the generation before the data: a change made while loading
	// bumps it again and the next refresh reloads.
	gen, err := s.st.Generation(ctx)
	if err != nil {
		return fmt.Errorf("read store generation: %w", err)
	}
	if gen == s.table.Load().gen {
		return nil
	}
	routes, err := s.loadRoutes(ctx)
	if err != nil {
		return err
	}
	s.table.Store(&routingTable{gen: gen, routes: routes})
	return nil
}

const loadPage = 500

// each pages through a store list until it is exhausted or fn says stop.
func each[T any](ctx context.Context, list func(Page) ([]T, string, error), fn func(T) bool) error {
	p := Page{Limit: loadPage}
	for {
		items, next, err := list(p)
		if err != nil {
			return err
		}
		for _, it := range items {
			if !fn(it) {
				return nil
			}
		}
		if next == "" || len(items) == 0 {
			return nil
		}
		p.After = next
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (s *Service) loadRoutes(ctx context.Context) (map[string]*Route, error) {
	now := s.clock.Now()
	routes := map[string]*Route{}
	err := each(ctx, func(p Page) ([]Image, string, error) { return s.st.ListImages(ctx, p) }, func(img Image) bool {
		routes[img.Label] = &Route{Label: img.Label, Pins: map[string]Pin{}, Revoked: map[string]string{}, TakenBack: map[string]bool{}}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("load images: %w", err)
	}
	err = each(ctx, func(p Page) ([]Rollout, string, error) { return s.st.ListRollouts(ctx, "", activeStates, p) }, func(r Rollout) bool {
		// Newest first: should a race have left two active rollouts of a
		// label, the newest is the one in force (the controller
		// supersedes the other).
		if rt := routes[r.Label]; rt != nil && rt.Active == nil {
			rt.Active = &r
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("load active rollouts: %w", err)
	}
	err = each(ctx, func(p Page) ([]Pin, string, error) { return s.st.ListPins(ctx, "", "", false, now, p) }, func(pin Pin) bool {
		if rt := routes[pin.Label]; rt != nil {
			rt.Pins[pin.Org] = pin
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("load pins: %w", err)
	}
	for label, rt := range routes {
		err := each(ctx, func(p Page) ([]Version, string, error) { return s.st.ListVersions(ctx, label, p) }, func(v Version) bool {
			if v.Revoked {
				rt.Revoked[v.Version] = v.RevokedReason
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("load versions of %s: %w", label, err)
		}
		var lastRings []Ring
		err = each(ctx, func(p Page) ([]Rollout, string, error) {
			return s.st.ListRollouts(ctx, label, []State{StateCompleted}, p)
		}, func(r Rollout) bool {
			if lastRings == nil {
				lastRings = r.Rings
			}
			if _, bad := rt.Revoked[r.Version]; bad {
				return true
			}
			rt.Default = r.Version
			return false
		})
		if err != nil {
			return nil, fmt.Errorf("load completed rollouts of %s: %w", label, err)
		}
		err = each(ctx, func(p Page) ([]Rollout, string, error) {
			return s.st.ListRollouts(ctx, label, []State{StateRolledBack}, p)
		}, func(r Rollout) bool {
			rt.TakenBack[r.Version] = true
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("load rolled-back rollouts of %s: %w", label, err)
		}
		// A version rolled back once and rolled out again later is good
		// again for runs that get it now.
		delete(rt.TakenBack, rt.Default)
		rt.Rings = lastRings
		if rt.Active != nil {
			delete(rt.TakenBack, rt.Active.Version)
			rt.Rings = rt.Active.Rings
		}
		for v := range rt.Revoked {
			rt.TakenBack[v] = true
		}
	}
	return routes, nil
}

// Resolve says which version of label a job of org gets, and why. runID,
// when given, ties every job of one workflow run to the version its first
// job got, unless that version was rolled back or revoked since. It reads
// only memory, except for one Store.AssignRun the first time this process
// sees runID; if that fails the answer is still given, without affinity.
func (s *Service) Resolve(ctx context.Context, org, label, runID string) (Resolution, error) {
	if org == "" || label == "" {
		return Resolution{}, fmt.Errorf("resolve: org and label are required: %w", ErrInvalid)
	}
	rt := s.table.Load().routes[label]
	if rt == nil {
		return Resolution{}, fmt.Errorf("resolve: image %q is not registered: %w", label, ErrNotFound)
	}
	now := s.clock.Now()
	res, err := rt.Decide(org, now)
	if runID == "" || (err == nil && res.Reason == "pin") {
		if err == nil {
			s.count(res)
		}
		return res, err
	}
	key := runID + "\x00" + label
	if v, ok := s.runs.get(key); ok && !rt.TakenBack[v] {
		if err != nil || v != res.Version {
			res = affinity(rt, org, runID, v)
		}
		s.count(res)
		return res, nil
	}
	if err != nil {
		return res, err
	}
	got, aerr := s.st.AssignRun(ctx, runID, label, res.Version, now)
	switch {
	case aerr != nil:
		s.log.Warn("assign run: answering without run affinity", "run", runID, "label", label, "err", aerr)
		s.count(res)
		return res, nil
	case got != res.Version && !rt.TakenBack[got]:
		res = affinity(rt, org, runID, got)
	}
	// A stored assignment to a version taken back (written by a replica
	// that had not seen the rollback yet) is ignored: this run follows the
	// current decision from now on.
	s.runs.put(key, res.Version)
	s.count(res)
	return res, nil
}

// ReasonNone is Resolutions' reason for a label that serves org nothing.
const ReasonNone = "none"

// Resolutions answers, for each of labels, what Resolve answers org now
// without a run (pin, ring or control share of the rollout, default),
// decided by the same routing table, without counting it as served: what
// a dashboard shows an org. A label that is not registered or has
// nothing servable gets Reason ReasonNone and why in Detail.
func (s *Service) Resolutions(org string, labels []string) ([]Resolution, error) {
	if org == "" {
		return nil, fmt.Errorf("resolutions: org is required: %w", ErrInvalid)
	}
	routes := s.table.Load().routes
	now := s.clock.Now()
	out := make([]Resolution, 0, len(labels))
	for _, label := range labels {
		rt := routes[label]
		if rt == nil {
			out = append(out, Resolution{Label: label, Reason: ReasonNone, Ring: -1, Detail: fmt.Sprintf("image %q is not registered", label)})
			continue
		}
		res, err := rt.Decide(org, now)
		if err != nil {
			res = Resolution{Label: label, Reason: ReasonNone, Ring: RingOf(rt.Rings, org), Detail: err.Error()}
		}
		out = append(out, res)
	}
	return out, nil
}

func affinity(rt *Route, org, runID, version string) Resolution {
	return Resolution{Label: rt.Label, Version: version, Reason: "affinity", Ring: RingOf(rt.Rings, org),
		Detail: fmt.Sprintf("workflow run %s started on %s; its jobs keep it", runID, version)}
}

func (s *Service) count(res Resolution) {
	k := servedKey{label: res.Label, version: res.Version, reason: res.Reason, ring: res.Ring}
	c, ok := s.served.Load(k)
	if !ok {
		c, _ = s.served.LoadOrStore(k, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// Flush writes the served counts gathered since the last flush, attributed
// to the current minute. On failure they are kept for the next flush.
func (s *Service) Flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	minute := s.clock.Now().UTC().Truncate(time.Minute)
	var batch []Served
	s.served.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Swap(0); n > 0 {
			key := k.(servedKey)
			batch = append(batch, Served{Label: key.label, Version: key.version, Ring: key.ring, Reason: key.reason, Minute: minute, Count: n})
		}
		return true
	})
	if len(batch) == 0 {
		return nil
	}
	if err := s.st.AddServed(ctx, batch); err != nil {
		for _, b := range batch {
			c, _ := s.served.Load(servedKey{label: b.Label, version: b.Version, reason: b.Reason, ring: b.Ring})
			c.(*atomic.Int64).Add(b.Count)
		}
		return fmt.Errorf("write served counts: %w", err)
	}
	return nil
}

// runCache remembers recent runs' versions: two generations of maps, the
// older dropped when the newer fills, so memory stays bounded without
// per-entry bookkeeping.
type runCache struct {
	mu       sync.Mutex
	cur, old map[string]string
	max      int
}

func (c *runCache) get(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	if ok {
		c.putLocked(k, v)
	}
	return v, ok
}

func (c *runCache) put(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *runCache) putLocked(k, v string) {
	if c.cur == nil || len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[string]string)
	}
	c.cur[k] = v
}

func details(kv ...any) json.RawMessage {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return b
}

// GateOf reads the verdict of an `imagegate check -o json` report: its
// "verdict" field, else a "failed" count or flag (also under "summary");
// GateUnknown for an empty report. ErrInvalid when it is not such JSON.
func GateOf(report json.RawMessage) (string, error) {
	if len(report) == 0 {
		return GateUnknown, nil
	}
	var r struct {
		Verdict string          `json:"verdict"`
		Failed  json.RawMessage `json:"failed"`
		Summary struct {
			Failed json.RawMessage `json:"failed"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(report, &r); err != nil {
		return "", fmt.Errorf("check report is not a JSON object from imagegate check -o json: %v: %w", err, ErrInvalid)
	}
	switch r.Verdict {
	case GatePass, GateFail:
		return r.Verdict, nil
	case "":
	default:
		return "", fmt.Errorf("check report verdict %q is neither pass nor fail: %w", r.Verdict, ErrInvalid)
	}
	failed := r.Failed
	if len(failed) == 0 {
		failed = r.Summary.Failed
	}
	switch f := strings.TrimSpace(string(failed)); f {
	case "":
		return GateUnknown, nil
	case "0", "false", "[]", "null":
		return GatePass, nil
	default:
		return GateFail, nil
	}
}

func normPage(p Page) Page {
	if p.Limit <= 0 {
		p.Limit = 100
	}
	p.Limit = min(p.Limit, 1000)
	return p
}

func isActive(state State) bool { return slices.Contains(activeStates, state) }

// errWrap keeps a store error's kind and says what was being done.
func errWrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
