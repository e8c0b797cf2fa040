package storetest

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

// RunSubscriptions runs the SubscriptionStore contract against stores
// made by open.
func RunSubscriptions(t *testing.T, open func(t *testing.T) rollout.Store) {
	t.Run("Subscriptions", func(t *testing.T) { testSubscriptions(t, open(t)) })
	t.Run("NoticeRuns", func(t *testing.T) { testNoticeRuns(t, open(t)) })
	t.Run("OrgTargets", func(t *testing.T) { testOrgTargets(t, open(t)) })
}

func testSubscriptions(t *testing.T, s rollout.Store) {
	_, err := s.CreateSubscription(ctx(t), rollout.Subscription{Org: "org-a", Label: "img"}, Audit("subscription.create", "subscription/org-a"))
	wantErr(t, "subscription without url or org target", err, rollout.ErrInvalid)

	var made []rollout.Subscription
	for i := range 5 {
		org := []string{"org-a", "org-b"}[i%2]
		sub := rollout.Subscription{Org: org, Label: fmt.Sprint("img", i%3), URL: fmt.Sprintf("https://hooks.example/%d", i), Format: "json",
			Filters: []string{"tool/php*"}, CreatedBy: "token:test", CreatedAt: T0}
		if i == 4 {
			sub.URL, sub.OrgTarget, sub.Filters = "", true, nil
		}
		got, err := s.CreateSubscription(ctx(t), sub, Audit("subscription.create", "subscription/"+org))
		must(t, err)
		if got.ID == "" {
			t.Fatal("CreateSubscription assigned no ID")
		}
		made = append(made, got)
	}
	all := func(f rollout.SubscriptionFilter) []rollout.Subscription {
		var out []rollout.Subscription
		p := rollout.Page{Limit: 2}
		for {
			got, next, err := s.ListSubscriptions(ctx(t), f, p)
			must(t, err)
			out = append(out, got...)
			if next == "" {
				return out
			}
			p.After = next
		}
	}
	if d := cmp.Diff(made, all(rollout.SubscriptionFilter{}), equateEmpty); d != "" {
		t.Errorf("all subscriptions in creation order (-made +listed):\n%s", d)
	}
	if d := cmp.Diff([]rollout.Subscription{made[0], made[3]}, all(rollout.SubscriptionFilter{Label: "img0"}), equateEmpty); d != "" {
		t.Errorf("subscriptions to img0 (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]rollout.Subscription{made[1], made[3]}, all(rollout.SubscriptionFilter{Org: "org-b"}), equateEmpty); d != "" {
		t.Errorf("subscriptions of org-b (-want +got):\n%s", d)
	}
	wantErr(t, "delete another org's subscription", s.DeleteSubscription(ctx(t), "org-b", made[0].ID, Audit("subscription.delete", "x")), rollout.ErrNotFound)
	must(t, s.DeleteSubscription(ctx(t), "org-a", made[0].ID, Audit("subscription.delete", "subscription/org-a/"+made[0].ID)))
	if got := all(rollout.SubscriptionFilter{Label: "img0"}); len(got) != 1 || got[0].ID != made[3].ID {
		t.Errorf("after the delete img0 has %+v", got)
	}
	if n := len(allAudit(t, s)); n != 6 {
		t.Errorf("%d audit entries after 5 creates and a delete, want 6", n)
	}
}

func testNoticeRuns(t *testing.T, s rollout.Store) {
	_, err := s.NoticesSent(ctx(t), "r-1")
	wantErr(t, "notices before they went out", err, rollout.ErrNotFound)
	run := rollout.NoticeRun{RolloutID: "r-1", Label: "img", Version: "v2", Notices: 3, SentAt: T0}
	added, err := s.RecordNotices(ctx(t), run, Audit("rollout.notices", "rollout/r-1"))
	must(t, err)
	again := run
	again.SentAt, again.Notices = T0.Add(1e9), 4
	added2, err := s.RecordNotices(ctx(t), again, Audit("rollout.notices", "rollout/r-1"))
	must(t, err)
	if !added || added2 {
		t.Errorf("RecordNotices added %v then %v, want true then false", added, added2)
	}
	got, err := s.NoticesSent(ctx(t), "r-1")
	must(t, err)
	if d := cmp.Diff(run, got); d != "" {
		t.Errorf("NoticesSent (-first +got):\n%s", d)
	}
	if n := len(allAudit(t, s)); n != 1 {
		t.Errorf("%d audit entries for one run recorded twice, want 1", n)
	}
}

func testOrgTargets(t *testing.T, s rollout.Store) {
	_, err := s.GetOrgTarget(ctx(t), "org-a")
	wantErr(t, "a target never set", err, rollout.ErrNotFound)
	for name, bad := range map[string]rollout.OrgTarget{
		"without url":    {Org: "org-a"},
		"without org":    {URL: "https://hooks.example/a"},
		"not http(s)":    {Org: "org-a", URL: "ftp://hooks.example/a"},
		"relative url":   {Org: "org-a", URL: "/hooks/a"},
		"unknown format": {Org: "org-a", URL: "https://hooks.example/a", Format: "xml"},
	} {
		_, err := s.SetOrgTarget(ctx(t), bad, Audit("org.target.set", "org/org-a"))
		wantErr(t, "target "+name, err, rollout.ErrInvalid)
	}

	first := rollout.OrgTarget{Org: "org-a", URL: "https://hooks.example/a", Format: "slack", UpdatedBy: "token:a", UpdatedAt: T0}
	got, err := s.SetOrgTarget(ctx(t), first, Audit("org.target.set", "org/org-a"))
	must(t, err)
	if d := cmp.Diff(first, got); d != "" {
		t.Errorf("SetOrgTarget returned (-set +got):\n%s", d)
	}
	other := rollout.OrgTarget{Org: "org-b", URL: "https://hooks.example/b", UpdatedBy: "token:b", UpdatedAt: T0}
	_, err = s.SetOrgTarget(ctx(t), other, Audit("org.target.set", "org/org-b"))
	must(t, err)
	// Setting again replaces: one target per organisation.
	moved := rollout.OrgTarget{Org: "org-a", URL: "https://hooks.example/a2", Format: "teams", UpdatedBy: "token:admin", UpdatedAt: T0.Add(1e9)}
	_, err = s.SetOrgTarget(ctx(t), moved, Audit("org.target.set", "org/org-a"))
	must(t, err)
	for org, want := range map[string]rollout.OrgTarget{"org-a": moved, "org-b": other} {
		got, err := s.GetOrgTarget(ctx(t), org)
		must(t, err)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("GetOrgTarget(%s) (-want +got):\n%s", org, d)
		}
	}

	must(t, s.DeleteOrgTarget(ctx(t), "org-a", Audit("org.target.delete", "org/org-a")))
	_, err = s.GetOrgTarget(ctx(t), "org-a")
	wantErr(t, "a deleted target", err, rollout.ErrNotFound)
	wantErr(t, "delete twice", s.DeleteOrgTarget(ctx(t), "org-a", Audit("org.target.delete", "org/org-a")), rollout.ErrNotFound)
	if _, err := s.GetOrgTarget(ctx(t), "org-b"); err != nil {
		t.Errorf("org-b's target went with org-a's: %v", err)
	}
	if n := len(allAudit(t, s)); n != 4 {
		t.Errorf("%d audit entries after 3 sets and a delete, want 4 (refusals write none)", n)
	}
}
