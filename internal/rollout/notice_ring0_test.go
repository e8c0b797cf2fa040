package rollout_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// ring0NoticeRings give the first ring a notice period of a day.
func ring0NoticeRings() []rollout.Ring {
	rings := threeRings()
	rings[0].NoticePeriod = 24 * time.Hour
	return rings
}

// TestRing0NoticePeriod: a rollout whose first ring declares a notice
// period stays pending — ring 0's orgs keep the old version — until the
// notices have been out that long, says why while it waits, and the
// notice tells ring 0 when it will get the version.
func TestRing0NoticePeriod(t *testing.T) {
	for name, health := range map[string]rollout.Health{
		"NoticeGate": rollout.NoticeGate{},
		// A gate among others still holds the start.
		"AllOf": rollout.AllOf{rollout.FailureRateHealth{MaxFailureRate: 0.05}, rollout.NoticeGate{}},
	} {
		t.Run(name, func(t *testing.T) { testRing0NoticePeriod(t, health) })
	}
}

func testRing0NoticePeriod(t *testing.T, health rollout.Health) {
	e := newEnv(t, rollout.ServiceOptions{Health: health})
	const label = "ubuntu-22.04"
	e.setup(label, ring0NoticeRings())
	notices := rollout.NewNotices(e.svc, e.db, rollout.NoticeOptions{})
	canary := ring0NoticeRings()[0].Orgs[0]
	_, err := e.db.CreateSubscription(e.ctx, rollout.Subscription{Org: canary, Label: label, URL: "https://hooks.example/canary"},
		rollout.AuditEntry{Actor: admin, Action: "subscription.create", Subject: "subscription/" + canary})
	e.must(err)

	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	waiting := func(want string) {
		t.Helper()
		st, err := e.svc.Status(e.ctx, label)
		e.must(err)
		if !strings.Contains(st.Waiting, want) {
			t.Errorf("status waiting = %q, want it to say %q", st.Waiting, want)
		}
		res, err := e.svc.Resolve(e.ctx, canary, label, "")
		e.must(err)
		if res.Version != "v1" {
			t.Errorf("ring 0 org %s resolves %s (%s) before ring 0 started, want v1", canary, res.Version, res.Reason)
		}
	}
	e.tickTo(r.ID, rollout.StatePending, 0)
	waiting("ring 0 (canary) not started: ring 0 (canary) has a notice period and the change notices have not gone out yet")

	sent := e.clock.Now().UTC()
	e.must(notices.Tick(e.ctx))
	up, err := notices.Upcoming(e.ctx, canary)
	e.must(err)
	if len(up) != 1 || up[0].Ring != 0 || up[0].Reached || !up[0].ReachesAt.Equal(sent.Add(24*time.Hour)) {
		t.Errorf("upcoming for ring 0 = %+v, want ring 0 reached at %v (the notice period)", up, sent.Add(24*time.Hour))
	}
	e.tickTo(r.ID, rollout.StatePending, 0)
	e.clock.Advance(24*time.Hour - time.Minute)
	e.tickTo(r.ID, rollout.StatePending, 0)
	waiting("starts no earlier than " + sent.Add(24*time.Hour).Format(time.RFC3339) + " (noticePeriod 24h0m0s)")

	e.clock.Advance(time.Minute)
	started := e.tickTo(r.ID, rollout.StateBaking, 0)
	if !started.RingStartedAt.Equal(sent.Add(24 * time.Hour)) {
		t.Errorf("ring 0 started at %v, want %v", started.RingStartedAt, sent.Add(24*time.Hour))
	}
	res, err := e.svc.Resolve(e.ctx, canary, label, "")
	e.must(err)
	if res.Version != "v2" {
		t.Errorf("ring 0 org resolves %s once ring 0 started, want v2", res.Version)
	}
}

// TestRing0NoticePeriodHotfix: an expedited rollout starts ring 0 at once
// despite its notice period, and the notices' audit entry says the period
// was skipped.
func TestRing0NoticePeriodHotfix(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{Health: rollout.NoticeGate{}})
	const label = "ubuntu-22.04"
	e.setup(label, ring0NoticeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2", Expedited: true})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	e.must(rollout.NewNotices(e.svc, e.db, rollout.NoticeOptions{}).Tick(e.ctx))
	audit, _, err := e.svc.Audit(e.ctx, rollout.AuditFilter{Action: "rollout.notices", SubjectPrefix: "rollout/" + r.ID}, rollout.Page{})
	e.must(err)
	if len(audit) != 1 || !strings.Contains(audit[0].Reason, "hotfix: the rings' notice periods are skipped") ||
		!strings.Contains(string(audit[0].Details), `"noticePeriodSkipped":true`) {
		t.Errorf("notices audit = %+v, want one saying the notice periods are skipped", audit)
	}
}
