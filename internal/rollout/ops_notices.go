package rollout

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// NoticeOptions configure Notices.
type NoticeOptions struct {
	Logger *slog.Logger // default: the Service's
}

// Notices fans change notices out to subscribers through the outbox.
// Safe for concurrent use and on several replicas: every notice's outbox
// key names the rollout and the subscription, so fanning out twice (a
// crash between enqueue and record, two replicas) queues each notice once.
type Notices struct {
	svc  *Service
	st   Store
	opts NoticeOptions
	log  *slog.Logger
}

// NewNotices returns notices over svc and st.
func NewNotices(svc *Service, st Store, opts NoticeOptions) *Notices {
	log := opts.Logger
	if log == nil {
		log = svc.log
	}
	return &Notices{svc: svc, st: st, opts: opts, log: log}
}

// Subscribe stores a subscription of s.Org to s.Label by actor.
func (n *Notices) Subscribe(ctx context.Context, actor string, s Subscription) (Subscription, error) {
	if err := CheckName("label", s.Label); err != nil {
		return Subscription{}, fmt.Errorf("subscribe: %w", err)
	}
	if err := CheckName("org", s.Org); err != nil {
		return Subscription{}, fmt.Errorf("subscribe: %w", err)
	}
	for _, f := range s.Filters {
		if err := diff.CheckPattern(f); err != nil {
			return Subscription{}, fmt.Errorf("subscribe %s to %s: filter %q: %v: %w", s.Org, s.Label, f, err, ErrInvalid)
		}
	}
	if s.OrgTarget {
		if _, err := n.st.GetOrgTarget(ctx, s.Org); errors.Is(err, ErrNotFound) {
			return Subscription{}, fmt.Errorf("subscribe %s to %s: organisation %s has no alert target on the server; set one first (imagegate org target set %s --url URL) or give a webhook url: %w",
				s.Org, s.Label, s.Org, s.Org, ErrPrecondition)
		} else if err != nil {
			return Subscription{}, errWrap(err, "subscribe %s to %s: alert target", s.Org, s.Label)
		}
	}
	s.CreatedBy, s.CreatedAt = actor, n.svc.clock.Now()
	out, err := n.st.CreateSubscription(ctx, s, AuditEntry{Actor: actor, Action: "subscription.create",
		Subject: "subscription/" + s.Org, Details: details("filters", s.Filters, "orgTarget", s.OrgTarget)})
	return out, errWrap(err, "subscribe %s to %s", s.Org, s.Label)
}

// Subscriptions lists subscriptions.
func (n *Notices) Subscriptions(ctx context.Context, f SubscriptionFilter, p Page) ([]Subscription, string, error) {
	out, next, err := n.st.ListSubscriptions(ctx, f, normPage(p))
	return out, next, errWrap(err, "list subscriptions")
}

// Unsubscribe deletes org's subscription id.
func (n *Notices) Unsubscribe(ctx context.Context, actor, org, id string) error {
	return errWrap(n.st.DeleteSubscription(ctx, org, id, AuditEntry{Actor: actor, Action: "subscription.delete", Subject: "subscription/" + org + "/" + id}),
		"unsubscribe %s", id)
}

// SetOrgTarget stores t as t.Org's alert target by actor. The audit
// entry names the target's host only: Slack's and Teams' URLs carry their
// secret in the path.
func (n *Notices) SetOrgTarget(ctx context.Context, actor string, t OrgTarget) (OrgTarget, error) {
	if err := CheckName("org", t.Org); err != nil {
		return OrgTarget{}, fmt.Errorf("set alert target: %w", err)
	}
	t.UpdatedBy, t.UpdatedAt = actor, n.svc.clock.Now()
	out, err := n.st.SetOrgTarget(ctx, t, AuditEntry{Actor: actor, Action: "org.target.set", Subject: "org/" + t.Org,
		Details: details("host", urlHost(t.URL), "format", t.Format)})
	return out, errWrap(err, "set alert target of %s", t.Org)
}

// OrgTarget returns org's alert target; ErrNotFound when it has none.
func (n *Notices) OrgTarget(ctx context.Context, org string) (OrgTarget, error) {
	t, err := n.st.GetOrgTarget(ctx, org)
	return t, errWrap(err, "alert target of %s", org)
}

// ClearOrgTarget removes org's alert target by actor; ErrNotFound when it
// has none.
func (n *Notices) ClearOrgTarget(ctx context.Context, actor, org string) error {
	return errWrap(n.st.DeleteOrgTarget(ctx, org, AuditEntry{Actor: actor, Action: "org.target.delete", Subject: "org/" + org}),
		"clear alert target of %s", org)
}

func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// releaseNotes is what every notice of one rollout shares: the diff.
type releaseNotes struct {
	changes  []diff.Change
	markdown string
}

func (n *Notices) notes(ctx context.Context, r Rollout) (releaseNotes, error) {
	if r.FromVersion == "" {
		return releaseNotes{markdown: fmt.Sprintf("%s %s is the label's first rollout: there is nothing to compare with.\n", r.Label, r.Version)}, nil
	}
	load := func(v string) (*snapshot.Snapshot, error) {
		ver, err := n.st.GetVersion(ctx, r.Label, v, true)
		if err != nil {
			return nil, errWrap(err, "release notes of %s: version %s", r.ID, v)
		}
		if len(ver.Snapshot) == 0 {
			return nil, nil
		}
		s, err := snapshot.Decode(bytes.NewReader(ver.Snapshot))
		if err != nil {
			return nil, nil // not comparable; said in the notes
		}
		return s, nil
	}
	old, err := load(r.FromVersion)
	if err != nil {
		return releaseNotes{}, err
	}
	cur, err := load(r.Version)
	if err != nil {
		return releaseNotes{}, err
	}
	if old == nil || cur == nil {
		return releaseNotes{markdown: fmt.Sprintf("%s %s or %s was pushed without a snapshot imagegate can read: no list of changes.\n", r.Label, r.FromVersion, r.Version)}, nil
	}
	rep := diff.Compare(old, cur, nil)
	var md bytes.Buffer
	if err := rep.Write(&md, report.Markdown); err != nil {
		return releaseNotes{}, err
	}
	return releaseNotes{changes: rep.Changes, markdown: md.String()}, nil
}

// classRank puts what customers miss first: removals, downgrades, breaks.
func classRank(class string) int {
	switch class {
	case diff.ClassRemoved:
		return 0
	case diff.ClassDowngraded:
		return 1
	case diff.ClassBroken:
		return 2
	}
	return 3
}

// entries are the changes matching filters (all without filters),
// removals and downgrades first, the diff's order within a class.
func (rn releaseNotes) entries(filters []string) []NoticeEntry {
	out := []NoticeEntry{}
	for _, c := range rn.changes {
		if len(filters) > 0 && !slices.ContainsFunc(filters, func(f string) bool { return diff.MatchID(f, c.ID) }) {
			continue
		}
		e := NoticeEntry{ID: c.ID, Class: c.Class}
		if c.Old != nil {
			e.From = c.Old.Version
		}
		if c.New != nil {
			e.To = c.New.Version
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b NoticeEntry) int { return classRank(a.Class) - classRank(b.Class) })
	return out
}

// ReachesAt is the earliest time rollout r can reach ring, its notices
// having gone out at sent (zero: not yet, taken as now), and whether it
// has already.
func ReachesAt(r Rollout, ring int, sent, now time.Time) (time.Time, bool) {
	if sent.IsZero() {
		sent = now
	}
	cur, t := r.Ring, r.RingStartedAt
	if r.State == StatePending || t.IsZero() {
		cur, t = 0, now
		if len(r.Rings) > 0 && !r.Expedited && sent.Add(r.Rings[0].NoticePeriod).After(t) {
			t = sent.Add(r.Rings[0].NoticePeriod) // ring 0 starts after its notice period (MayStart)
		}
	} else if ring <= r.Ring {
		return t, true
	}
	for i := cur; i < ring && i+1 < len(r.Rings); i++ {
		t = t.Add(r.Rings[i].BakeTime)
		if gate := sent.Add(r.Rings[i+1].NoticePeriod); !r.Expedited && gate.After(t) {
			t = gate
		}
	}
	if t.Before(now) {
		t = now
	}
	return t, false
}

func (n *Notices) notice(r Rollout, rn releaseNotes, s Subscription, sent, now time.Time) ChangeNotice {
	ring := RingOf(r.Rings, s.Org)
	at, reached := ReachesAt(r, ring, sent, now)
	nt := ChangeNotice{Org: s.Org, Label: r.Label, Version: r.Version, FromVersion: r.FromVersion, RolloutID: r.ID,
		Ring: ring, ReachesAt: at.UTC(), Reached: reached, Entries: rn.entries(s.Filters), ReleaseNotes: rn.markdown, SubscriptionID: s.ID}
	if ring >= 0 && ring < len(r.Rings) {
		nt.RingName = r.Rings[ring].Name
	}
	return nt
}

// fanoutBatch items go to the outbox per transaction.
const fanoutBatch = 1000

// Fanout queues r's notice for every matching subscriber of its label and
// records that they went out. Idempotent (see Notices). Returns how many
// notices are queued.
func (n *Notices) Fanout(ctx context.Context, r Rollout) (int, error) {
	if run, err := n.st.NoticesSent(ctx, r.ID); err == nil {
		return run.Notices, nil
	} else if !errors.Is(err, ErrNotFound) {
		return 0, errWrap(err, "notices of %s", r.ID)
	}
	rn, err := n.notes(ctx, r)
	if err != nil {
		return 0, err
	}
	now := n.svc.clock.Now().UTC()
	queued, skipped := 0, 0
	// The organisations' targets, each read once per fan-out (nil: none).
	targets := map[string]*OrgTarget{}
	var batch []OutboxItem
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := n.st.Enqueue(ctx, batch); err != nil {
			return fmt.Errorf("queue notices of %s: %w", r.ID, err)
		}
		queued += len(batch)
		batch = batch[:0]
		return nil
	}
	// stop is the error that ended the walk early: each returns nil then.
	var stop error
	err = each(ctx, func(p Page) ([]Subscription, string, error) {
		p.Limit = fanoutBatch
		return n.st.ListSubscriptions(ctx, SubscriptionFilter{Label: r.Label}, p)
	}, func(s Subscription) bool {
		nt := n.notice(r, rn, s, now, now)
		if len(s.Filters) > 0 && len(nt.Entries) == 0 {
			return true
		}
		url, format := s.URL, s.Format
		if s.OrgTarget {
			tg, seen := targets[s.Org]
			if !seen {
				t, gerr := n.st.GetOrgTarget(ctx, s.Org)
				switch {
				case gerr == nil:
					tg = &t
				case !errors.Is(gerr, ErrNotFound):
					stop = fmt.Errorf("alert target of %s: %w", s.Org, gerr)
					return false
				}
				targets[s.Org] = tg
			}
			if tg == nil {
				// Cleared after the subscription was made: nowhere
				// to send it until the organisation sets one again.
				n.log.Warn("notice: the organisation has no alert target; skipped", "org", s.Org, "subscription", s.ID)
				skipped++
				return true
			}
			url, format = tg.URL, tg.Format
		}
		if format == "" {
			format = "json"
		}
		a := Alert{ID: "notice/" + r.ID + "/" + s.ID, Kind: AlertNotice, Label: r.Label, Version: r.Version, FromVersion: r.FromVersion,
			RolloutID: r.ID, Ring: nt.Ring, RingName: nt.RingName, Summary: nt.summary(), Link: UpcomingPath(s.Org), CreatedAt: now, Details: nt.details()}
		batch = append(batch, OutboxItem{Key: a.ID, URL: url, Format: format, Alert: a, CreatedAt: now})
		if len(batch) >= fanoutBatch {
			if stop = flush(); stop != nil {
				return false
			}
		}
		return true
	})
	err = cmp.Or(err, stop)
	if err == nil {
		err = flush()
	}
	if err != nil {
		return queued, errWrap(err, "notices of %s", r.ID)
	}
	audit := AuditEntry{Actor: NoticeActor, Action: "rollout.notices", Subject: "rollout/" + r.ID,
		Reason: fmt.Sprintf("%d change notices queued", queued)}
	kv := []any{"notices", queued}
	if skipped > 0 {
		audit.Reason += fmt.Sprintf("; %d skipped: their organisation has no alert target", skipped)
		kv = append(kv, "skippedNoTarget", skipped)
	}
	if r.Expedited && slices.ContainsFunc(r.Rings, func(g Ring) bool { return g.NoticePeriod > 0 }) {
		audit.Reason += "; hotfix: the rings' notice periods are skipped"
		kv = append(kv, "noticePeriodSkipped", true)
	}
	audit.Details = details(kv...)
	if _, err := n.st.RecordNotices(ctx, NoticeRun{RolloutID: r.ID, Label: r.Label, Version: r.Version, Notices: queued, SentAt: now}, audit); err != nil {
		return queued, errWrap(err, "record notices of %s", r.ID)
	}
	return queued, nil
}

// Tick fans out the notices of every unfinished rollout whose notices
// have not gone out (a rollout that just started).
func (n *Notices) Tick(ctx context.Context) error {
	var errs []error
	err := each(ctx, func(p Page) ([]Rollout, string, error) {
		return n.st.ListRollouts(ctx, "", []State{StatePending, StateBaking, StatePaused}, p)
	}, func(r Rollout) bool {
		if _, err := n.Fanout(ctx, r); err != nil {
			errs = append(errs, err)
		}
		return true
	})
	return errors.Join(append(errs, err)...)
}

// Run ticks every interval until ctx ends.
func (n *Notices) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := n.Tick(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("change notices", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// UpcomingPath is the API path of an organisation's upcoming changes.
func UpcomingPath(org string) string { return "/api/v1/orgs/" + org + "/upcoming" }

// Upcoming is what org's subscriptions would be told about the rollouts
// under way now, one notice per subscription with a match.
func (n *Notices) Upcoming(ctx context.Context, org string) ([]ChangeNotice, error) {
	out := []ChangeNotice{}
	now := n.svc.clock.Now().UTC()
	notes := map[string]releaseNotes{}
	err := each(ctx, func(p Page) ([]Subscription, string, error) {
		return n.st.ListSubscriptions(ctx, SubscriptionFilter{Org: org}, p)
	}, func(s Subscription) bool {
		rt := n.svc.table.Load().routes[s.Label]
		if rt == nil || rt.Active == nil || rt.Active.State == StateHalted {
			return true
		}
		r := *rt.Active
		rn, ok := notes[r.ID]
		if !ok {
			var err error
			if rn, err = n.notes(ctx, r); err != nil {
				n.log.Warn("upcoming: release notes", "rollout", r.ID, "err", err)
				return true
			}
			notes[r.ID] = rn
		}
		var sent time.Time
		if run, err := n.st.NoticesSent(ctx, r.ID); err == nil {
			sent = run.SentAt
		}
		nt := n.notice(r, rn, s, sent, now)
		if len(s.Filters) == 0 || len(nt.Entries) > 0 {
			out = append(out, nt)
		}
		return true
	})
	return out, errWrap(err, "upcoming changes for %s", org)
}

// NoticeGate wraps a Health so that a rollout does not enter a ring with
// a NoticePeriod before that long after its notices went out: leaving the
// ring before it is held as "not known yet", and so is starting ring 0
// (StartGate). Expedited rollouts (hotfixes) skip the periods; their
// notices' audit entry says so. An unhealthy verdict of Next still halts
// at once.
type NoticeGate struct {
	Next Health // nil: every ring healthy
	Sent interface {
		NoticesSent(ctx context.Context, rolloutID string) (NoticeRun, error)
	}
	Clock Clock // default: the system clock
}

var (
	_ Health    = NoticeGate{}
	_ StartGate = NoticeGate{}
)

// MayStart implements StartGate: a rollout whose ring 0 declares a
// NoticePeriod stays pending until that long after its notices went out.
// Next is not asked: there is no ring to judge yet.
func (g NoticeGate) MayStart(ctx context.Context, r Rollout) (HealthResult, error) {
	return g.period(ctx, r, 0)
}

// Check implements Health.
func (g NoticeGate) Check(ctx context.Context, r Rollout, ring int) (HealthResult, error) {
	res := HealthResult{Healthy: true, Known: true}
	if g.Next != nil {
		var err error
		if res, err = g.Next.Check(ctx, r, ring); err != nil || (res.Known && !res.Healthy) {
			return res, err
		}
	}
	held, err := g.period(ctx, r, ring+1)
	if err != nil || !held.Known {
		return held, err
	}
	return res, nil
}

// period holds r out of ring (Known false, with why) until ring's
// NoticePeriod has passed since r's notices went out.
func (g NoticeGate) period(ctx context.Context, r Rollout, ring int) (HealthResult, error) {
	pass := HealthResult{Healthy: true, Known: true}
	if r.Expedited || ring >= len(r.Rings) || r.Rings[ring].NoticePeriod <= 0 {
		return pass, nil
	}
	next := r.Rings[ring]
	run, err := g.Sent.NoticesSent(ctx, r.ID)
	if errors.Is(err, ErrNotFound) {
		return HealthResult{Reason: fmt.Sprintf("ring %d (%s) has a notice period and the change notices have not gone out yet", ring, next.Name)}, nil
	}
	if err != nil {
		return HealthResult{}, fmt.Errorf("notice period of %s ring %d: %w", r.ID, ring, err)
	}
	now := time.Now()
	if g.Clock != nil {
		now = g.Clock.Now()
	}
	if until := run.SentAt.Add(next.NoticePeriod); now.Before(until) {
		return HealthResult{Reason: fmt.Sprintf("ring %d (%s) was given notice at %s and starts no earlier than %s (noticePeriod %s)",
			ring, next.Name, run.SentAt.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339), next.NoticePeriod)}, nil
	}
	return pass, nil
}
