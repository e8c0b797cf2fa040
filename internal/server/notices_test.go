package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/snapshot"
)

func snapshotJSON(t testing.TB, tools map[string]string) json.RawMessage {
	t.Helper()
	s := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/img", OS: snapshot.OS{ID: "debian", VersionID: "12"}}
	for name, v := range tools {
		s.Tools = append(s.Tools, snapshot.Tool{Name: name, Path: "/usr/bin/" + name, Version: v, Status: "ok"})
	}
	var b strings.Builder
	if err := snapshot.Encode(&b, s); err != nil {
		t.Fatal(err)
	}
	return json.RawMessage(b.String())
}

var noticeRings = []rollout.Ring{
	{Name: "canary", Orgs: []string{"org-canary"}, Percent: 0, BakeTime: time.Hour},
	{Name: "early", Percent: 10, BakeTime: 2 * time.Hour},
	{Name: "everyone", Percent: 100, NoticePeriod: 48 * time.Hour},
}

// noticeEnv has v1 completed on noticeRings and v2 pushed: php8.1 removed,
// git downgraded, node upgraded, php8.2 added.
func noticeEnv(t *testing.T) (*env, *rollout.Notices) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t)
	// A label's ring plan may be set once a version of it was pushed.
	if _, err := e.admin.PushVersion(ctx, label, api.PushVersionRequest{Version: "v1", CheckReport: []byte(passReport),
		Snapshot: snapshotJSON(t, map[string]string{"php8.1": "8.1.2", "git": "2.40.1", "node": "18.19.0"})}); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.SetRings(ctx, label, noticeRings); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v1", Expedited: true}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		e.tick(t, 3*time.Hour)
	}
	if st, _ := e.svc.Status(ctx, label); st.Default != "v1" {
		t.Fatalf("v1 did not complete: %+v", st)
	}
	if _, err := e.admin.PushVersion(ctx, label, api.PushVersionRequest{Version: "v2", CheckReport: []byte(passReport),
		Snapshot: snapshotJSON(t, map[string]string{"php8.2": "8.2.7", "git": "2.39.2", "node": "20.11.0"})}); err != nil {
		t.Fatal(err)
	}
	return e, rollout.NewNotices(e.svc, e.st, rollout.NoticeOptions{})
}

// TestNotices: a subscriber whose filters match gets one notice through
// the outbox, removals and downgrades first, with the time the rollout
// reaches its ring; one whose filters match nothing gets none; upcoming
// shows the same; the ring's notice period holds the rollout.
func TestNotices(t *testing.T) {
	ctx := context.Background()
	e, notices := noticeEnv(t)
	org := orgsByRing(t, noticeRings)[2]
	hook := "https://hooks.example/" + org
	subs := []api.SubscribeRequest{
		{Label: label, URL: hook, Filters: []string{"tool/php*", "tool/git"}},
		{Label: label, URL: "https://hooks.example/node-only", Filters: []string{"tool/ruby*"}},
	}
	for _, s := range subs {
		if _, err := e.org(t, org).Subscribe(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.org(t, org).Subscribe(ctx, api.SubscribeRequest{Label: label, URL: hook, Filters: []string{"tools/php"}}); !errors.Is(err, rollout.ErrInvalid) {
		t.Errorf("a filter with a typo: %v, want invalid", err)
	}
	if _, err := e.org(t, org).Subscribe(ctx, api.SubscribeRequest{Org: "org-other", Label: label, URL: hook}); !errors.Is(err, rollout.ErrForbidden) {
		t.Errorf("subscribing another org: %v, want forbidden", err)
	}

	r, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	sentAt := e.clock.Now().UTC()
	if err := notices.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if err := notices.Tick(ctx); err != nil { // again: nothing more
		t.Fatal(err)
	}
	items, _, err := e.st.ListOutbox(ctx, rollout.OutboxFilter{KeyPrefix: "notice/"}, rollout.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].URL != hook || items[0].Alert.Kind != rollout.AlertNotice {
		t.Fatalf("outbox holds %+v, want one notice to %s", items, hook)
	}
	var n rollout.ChangeNotice
	if err := json.Unmarshal(items[0].Alert.Details, &n); err != nil {
		t.Fatal(err)
	}
	want := []rollout.NoticeEntry{
		{ID: "tool/php8.1", Class: "removed", From: "8.1.2"},
		{ID: "tool/git", Class: "downgraded", From: "2.40.1", To: "2.39.2"},
		{ID: "tool/php8.2", Class: "added", To: "8.2.7"},
	}
	if d := cmp.Diff(want, n.Entries); d != "" {
		t.Errorf("notice entries (-want +got):\n%s", d)
	}
	if n.Ring != 2 || !n.ReachesAt.Equal(sentAt.Add(48*time.Hour)) || n.Reached {
		t.Errorf("notice: ring %d reaches at %v (reached %v), want ring 2 at %v (the notice period outlasts the bake times)", n.Ring, n.ReachesAt, n.Reached, sentAt.Add(48*time.Hour))
	}
	if !strings.Contains(n.ReleaseNotes, "php8.1") || !strings.Contains(items[0].Alert.Summary, "removed tool/php8.1") {
		t.Errorf("release notes or summary miss the removal: %q / %q", n.ReleaseNotes, items[0].Alert.Summary)
	}
	body, err := alert.Render(alert.FormatJSON, items[0].Alert, items[0].Alert.Link)
	if err != nil || !strings.Contains(string(body), `"kind":"notice"`) {
		t.Errorf("rendered notice %s, %v", body, err)
	}

	up, err := e.org(t, org).Upcoming(ctx, org)
	if err != nil || len(up) != 1 || up[0].RolloutID != r.ID || !up[0].ReachesAt.Equal(n.ReachesAt) {
		t.Fatalf("upcoming = %+v, %v; want the notice's rollout and time", up, err)
	}

	gate := rollout.NoticeGate{Sent: e.st, Clock: e.clock}
	for _, step := range []struct {
		advance time.Duration
		known   bool
	}{{0, true}, {0, false}, {47 * time.Hour, false}, {time.Hour, true}} {
		e.clock.Advance(step.advance)
		cur, err := e.admin.Rollout(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		ring := 1 // leaving ring 1 enters ring 2, which has the notice period
		if step.known && step.advance == 0 {
			ring = 0 // entering ring 1: no notice period
		}
		res, err := gate.Check(ctx, cur, ring)
		if err != nil || res.Known != step.known {
			t.Errorf("gate leaving ring %d after %v: %+v, %v; want known %v", ring, step.advance, res, err, step.known)
		}
	}
}

// TestNoticeHotfixSkipsPeriod: an expedited rollout is not held by the
// notice period, and its notices' audit entry says the period is skipped.
func TestNoticeHotfixSkipsPeriod(t *testing.T) {
	ctx := context.Background()
	e, notices := noticeEnv(t)
	r, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2", Expedited: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := notices.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := rollout.NoticeGate{Sent: e.st, Clock: e.clock}.Check(ctx, r, 1)
	if err != nil || !res.Known {
		t.Errorf("hotfix leaving ring 1: %+v, %v; want not held", res, err)
	}
	audit, _, err := e.svc.Audit(ctx, rollout.AuditFilter{Action: "rollout.notices", SubjectPrefix: "rollout/" + r.ID}, rollout.Page{})
	if err != nil || len(audit) != 1 || !strings.Contains(audit[0].Reason, "skipped") {
		t.Errorf("notices audit = %+v, %v; want one saying the notice period is skipped", audit, err)
	}
}

// TestNoticeOrgTarget: a subscription with orgTarget needs the
// organisation's alert target; its notice goes there; a target cleared
// before the fan-out skips the notice, said in the audit entry; the URL
// is redacted in answers and absent from the audit log.
func TestNoticeOrgTarget(t *testing.T) {
	ctx := context.Background()
	e, notices := noticeEnv(t)
	orgs := orgsByRing(t, noticeRings)
	own, gone := orgs[1], orgs[2]
	secret := "https://hooks.slack.example/services/T000/B000/XXXXSECRET"

	if _, err := e.org(t, own).Subscribe(ctx, api.SubscribeRequest{Label: label, OrgTarget: true}); !errors.Is(err, rollout.ErrPrecondition) {
		t.Fatalf("orgTarget subscription without a target: %v, want precondition failed", err)
	}
	if _, err := e.org(t, own).OrgTarget(ctx, own); !errors.Is(err, rollout.ErrNotFound) {
		t.Errorf("target before it is set: %v, want not found", err)
	}
	if _, err := e.org(t, own).SetOrgTarget(ctx, own, api.OrgTargetRequest{URL: "hooks.example/no-scheme"}); !errors.Is(err, rollout.ErrInvalid) {
		t.Errorf("a target without a scheme: %v, want invalid", err)
	}
	set, err := e.org(t, own).SetOrgTarget(ctx, own, api.OrgTargetRequest{URL: secret, Format: "slack"})
	if err != nil {
		t.Fatal(err)
	}
	if set.URL != "https://hooks.slack.example/…" || set.Format != "slack" || set.Org != own {
		t.Errorf("set target answered %+v, want the URL redacted", set)
	}
	if got, err := e.admin.OrgTarget(ctx, own); err != nil || got.URL != set.URL || !strings.HasPrefix(got.UpdatedBy, "token:") {
		t.Errorf("admin reads the target: %+v, %v", got, err)
	}
	for _, org := range []string{own, gone} {
		if _, err := e.admin.SetOrgTarget(ctx, org, api.OrgTargetRequest{URL: secret + "/" + org, Format: "slack"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.org(t, org).Subscribe(ctx, api.SubscribeRequest{Label: label, OrgTarget: true, Filters: []string{"tool/*"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.org(t, gone).ClearOrgTarget(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := e.org(t, gone).ClearOrgTarget(ctx, gone); !errors.Is(err, rollout.ErrNotFound) {
		t.Errorf("clearing twice: %v, want not found", err)
	}

	r, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := notices.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	items, _, err := e.st.ListOutbox(ctx, rollout.OutboxFilter{KeyPrefix: "notice/"}, rollout.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].URL != secret+"/"+own || items[0].Format != "slack" {
		t.Fatalf("outbox holds %+v, want one slack notice to %s's target", items, own)
	}
	audit, _, err := e.svc.Audit(ctx, rollout.AuditFilter{Action: "rollout.notices", SubjectPrefix: "rollout/" + r.ID}, rollout.Page{})
	if err != nil || len(audit) != 1 || !strings.Contains(audit[0].Reason, "1 change notices queued; 1 skipped: their organisation has no alert target") {
		t.Errorf("notices audit = %+v, %v; want one counting the skipped notice", audit, err)
	}
	all, _, err := e.svc.Audit(ctx, rollout.AuditFilter{Action: "org.target.set"}, rollout.Page{})
	if err != nil || len(all) != 3 {
		t.Fatalf("org.target.set audit: %d entries, %v; want 3", len(all), err)
	}
	for _, a := range all {
		if strings.Contains(string(a.Details), "SECRET") || !strings.Contains(string(a.Details), "hooks.slack.example") {
			t.Errorf("audit details %s: want the host, never the URL's secret", a.Details)
		}
	}
}

// TestNoticeFanout10k measures the fan-out to 10,000 subscriptions: the
// time from the rollout's start until every notice is in the outbox.
func TestNoticeFanout10k(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 subscriptions")
	}
	ctx := context.Background()
	e, notices := noticeEnv(t)
	const n = 10_000
	for i := range n {
		s := rollout.Subscription{Org: fmt.Sprintf("org-%d", i), Label: label, URL: fmt.Sprintf("https://hooks.example/%d", i), Filters: []string{"tool/php*"}}
		if _, err := e.st.CreateSubscription(ctx, s, rollout.AuditEntry{Actor: "test", Action: "subscription.create", Subject: "subscription/" + s.Org}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	queued, err := notices.Fanout(ctx, r)
	took := time.Since(start)
	if err != nil || queued != n {
		t.Fatalf("fan-out queued %d, %v; want %d", queued, err, n)
	}
	items, _, err := e.st.ListOutbox(ctx, rollout.OutboxFilter{KeyPrefix: "notice/" + r.ID + "/", Undelivered: true}, rollout.Page{Limit: 1000})
	if err != nil || len(items) != 1000 {
		t.Fatalf("outbox first page: %d items, %v", len(items), err)
	}
	t.Logf("fan-out to %d subscriptions: %v until all are in the outbox (SQLite, %s)", n, took, os.TempDir())
}
