package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) || apiErr.Status != status {
		t.Fatalf("got %v, want HTTP %d", err, status)
	}
}

// TestPins: an organisation pins itself to the previous version, the pin
// expires on its own, is cleared, and tokens cannot reach beyond their role.
func TestPins(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.admin.SetRings(ctx, "", threeRings); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1", "v2"} {
		mustPush(t, e.admin, label, v, passReport)
		if _, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: v}); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			e.tick(t, 3*time.Hour)
		}
	}
	orgA, orgB := e.org(t, "org-a"), e.org(t, "org-b")
	if res, err := orgA.Resolve(ctx, "org-a", label, ""); err != nil || res.Version != "v2" {
		t.Fatalf("before pinning: %+v, %v", res, err)
	}

	// org-a pins itself back to v1 for a day.
	pin, err := orgA.SetPin(ctx, "org-a", label, api.SetPinRequest{Version: "v1", Reason: "our builds break on v2", ExpiresAt: e.clock.Now().Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if pin.CreatedBy != actorOf(e.tokens["org:org-a"], "test-org:org-a", "org:org-a") || pin.Owner != "token:test-org:org-a" {
		t.Errorf("pin made by %q owned by %q", pin.CreatedBy, pin.Owner)
	}
	res, err := e.runner.Resolve(ctx, "org-a", label, "")
	if err != nil || res.Version != "v1" || res.Reason != "pin" {
		t.Fatalf("pinned org resolves %+v, %v; want v1 by pin", res, err)
	}
	if res, err := e.runner.Resolve(ctx, "org-b", label, ""); err != nil || res.Version != "v2" {
		t.Fatalf("unpinned org resolves %+v, %v; want v2", res, err)
	}

	// Tokens stay within their role.
	_, err = orgB.SetPin(ctx, "org-a", label, api.SetPinRequest{Version: "v2", Reason: "r", ExpiresAt: e.clock.Now().Add(time.Hour)})
	wantStatus(t, err, http.StatusForbidden)
	wantStatus(t, orgB.ClearPin(ctx, "org-a", label), http.StatusForbidden)
	_, err = orgB.ListPins(ctx, "org-a", "", rollout.Page{})
	wantStatus(t, err, http.StatusForbidden)
	_, err = orgB.Resolve(ctx, "org-a", label, "")
	wantStatus(t, err, http.StatusForbidden)
	_, err = e.runner.SetPin(ctx, "org-a", label, api.SetPinRequest{Version: "v2", Reason: "r", ExpiresAt: e.clock.Now().Add(time.Hour)})
	wantStatus(t, err, http.StatusForbidden)
	_, err = e.runner.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v1"})
	wantStatus(t, err, http.StatusForbidden)
	_, err = e.runner.Act(ctx, "any", apiclient.ActionRollback, "")
	wantStatus(t, err, http.StatusForbidden)

	// org-b lists its own pins by default and sees none; org-a sees its own.
	if l, err := orgB.ListPins(ctx, "", "", rollout.Page{}); err != nil || len(l.Items) != 0 {
		t.Fatalf("org-b pins: %+v, %v", l, err)
	}
	l, err := orgA.ListPins(ctx, "", label, rollout.Page{})
	if err != nil || len(l.Items) != 1 || l.Items[0].Version != "v1" {
		t.Fatalf("org-a pins: %+v, %v", l, err)
	}

	// Within the warning window the pin is flagged; after expiry it stops applying.
	e.clock.Advance(23 * time.Hour)
	l, err = orgA.ListPins(ctx, "org-a", "", rollout.Page{})
	if err != nil || len(l.Items) != 1 || !l.Items[0].ExpiresSoon {
		t.Fatalf("pin an hour before expiry: %+v, %v; want expiresSoon", l, err)
	}
	e.clock.Advance(2 * time.Hour)
	if res, err := e.runner.Resolve(ctx, "org-a", label, ""); err != nil || res.Version != "v2" {
		t.Fatalf("after expiry: %+v, %v; want v2", res, err)
	}

	// An admin pins any org; clearing removes it; clearing again is 404.
	if _, err := e.admin.SetPin(ctx, "org-b", label, api.SetPinRequest{Version: "v1", Reason: "support case 7", ExpiresAt: e.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.runner.Resolve(ctx, "org-b", label, ""); res.Version != "v1" {
		t.Fatalf("admin pin not applied: %+v", res)
	}
	if err := orgB.ClearPin(ctx, "org-b", label); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.runner.Resolve(ctx, "org-b", label, ""); res.Version != "v2" {
		t.Fatalf("cleared pin still applied: %+v", res)
	}
	wantStatus(t, orgB.ClearPin(ctx, "org-b", label), http.StatusNotFound)

	// A pin to a revoked version is refused unless overridden with a reason.
	if _, err := e.admin.RevokeVersion(ctx, label, "v1", "CVE-2026-0001 in openssl"); err != nil {
		t.Fatal(err)
	}
	_, err = orgA.SetPin(ctx, "org-a", label, api.SetPinRequest{Version: "v1", Reason: "again", ExpiresAt: e.clock.Now().Add(time.Hour)})
	if err == nil {
		t.Fatal("pin to a revoked version accepted")
	}
	if _, err := orgA.SetPin(ctx, "org-a", label, api.SetPinRequest{Version: "v1", Reason: "air-gapped, accepted risk", OverrideRevoked: true, ExpiresAt: e.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("override: %v", err)
	}
}

// TestPagination walks a list page by page with ?limit= and ?after=.
func TestPagination(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	want := map[string]bool{}
	for _, v := range []string{"a", "b", "c", "d", "e"} {
		mustPush(t, e.admin, label, v, "")
		want[v] = true
	}
	seen := map[string]bool{}
	after, pages := "", 0
	for {
		l, err := e.admin.Versions(ctx, label, rollout.Page{Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(l.Items) > 2 {
			t.Fatalf("page of %d items with limit 2", len(l.Items))
		}
		for _, v := range l.Items {
			if seen[v.Version] {
				t.Fatalf("%s listed twice", v.Version)
			}
			seen[v.Version] = true
		}
		if l.Next == "" {
			break
		}
		after = l.Next
	}
	if len(seen) != len(want) || pages != 3 {
		t.Fatalf("saw %v in %d pages, want 5 versions in 3", seen, pages)
	}
}

// TestMetrics scrapes /metrics after some traffic.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.admin.SetRings(ctx, "", threeRings); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "v1", passReport)
	e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v1"})
	mustPush(t, e.admin, label, "v2", passReport)
	e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2"})
	e.tick(t, 0)
	for range 3 {
		e.runner.Resolve(ctx, "org-1", label, "")
	}
	e.runner.Resolve(ctx, "org-1", "nope", "")
	if _, err := e.runner.PostEvents(ctx, []rollout.JobEvent{{JobID: "j1", Org: "org-1", Label: label, Version: "v1", Outcome: rollout.OutcomeSucceeded, StartedAt: e.clock.Now(), DurationMs: 3}}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`imagegate_resolves_total{outcome="ok",reason="default"} 3`,
		`imagegate_resolves_total{outcome="not_found",reason="none"} 1`,
		`imagegate_rollouts{state="baking"} 1`,
		`imagegate_events_ingested_total 1`,
		`imagegate_controller_ticks_total 1`,
		`imagegate_controller_leader 0`,
		`imagegate_http_requests_total{code="201",route="POST /api/v1/rollouts"} 2`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", b)
	}
}
