package server_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

// auditOf lists the audit entries under subject, newest first, as
// "action: reason".
func auditOf(t *testing.T, c *apiclient.Client, subject string) []string {
	t.Helper()
	l, err := c.Audit(context.Background(), rollout.AuditFilter{SubjectPrefix: subject}, rollout.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range l.Items {
		if a.Subject == subject {
			out = append(out, a.Action+": "+a.Reason)
		}
	}
	return out
}

// TestStateChangesAudited: an unknown gate needs force like a failed one;
// a superseded rollout, a revocation mid-rollout and a second revocation
// each write exactly what they change, saying why.
func TestStateChangesAudited(t *testing.T) {
	ctx := context.Background()
	h := newHostile(t, "sqlite")
	admin, _ := apiclient.New(h.URL, adminSecret, nil)

	// v3 has no check report: gate unknown.
	mustPush(t, admin, label, "v3", "")
	_, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v3"})
	wantAPIError(t, "rolling out an unknown gate without force", err, 412)
	v3, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v3", Force: true, ForceReason: "checked by hand"})
	if err != nil || !v3.Forced {
		t.Fatalf("forced start of v3: %+v, %v", v3, err)
	}
	// It superseded the pending v2 rollout, which says so under its own subject.
	if got, want := auditOf(t, admin, "rollout/"+h.rollout), []string{
		"rollout.supersede: superseded by rollout " + v3.ID + " of v3",
		"rollout.start: ",
	}; !cmp.Equal(got, want) {
		t.Errorf("audit of the superseded rollout:\n%s", cmp.Diff(want, got))
	}

	// Revoking v3 rolls its rollout back with the reason; revoking again
	// with the same reason is a no-op, with another a conflict; neither
	// writes anything.
	if _, err := admin.RevokeVersion(ctx, label, "v3", "segfaults in libc"); err != nil {
		t.Fatal(err)
	}
	ro, err := admin.Rollout(ctx, v3.ID)
	if err != nil || ro.State != rollout.StateRolledBack || ro.Reason != "version revoked: segfaults in libc" {
		t.Errorf("rollout of the revoked version: %s %q, %v", ro.State, ro.Reason, err)
	}
	before, err := admin.Audit(ctx, rollout.AuditFilter{}, rollout.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeVersion(ctx, label, "v3", "segfaults in libc"); err != nil {
		t.Errorf("retrying a revocation: %v", err)
	}
	_, err = admin.RevokeVersion(ctx, label, "v3", "another reason")
	wantAPIError(t, "revoking again with another reason", err, 409)
	after, err := admin.Audit(ctx, rollout.AuditFilter{}, rollout.Page{Limit: 1})
	if err != nil || after.Items[0].ID != before.Items[0].ID {
		t.Errorf("repeated revocations wrote audit entries: newest %+v, was %+v", after.Items[0], before.Items[0])
	}
	v, err := admin.Version(ctx, label, "v3")
	if err != nil || v.RevokedReason != "segfaults in libc" {
		t.Errorf("revoked reason %q, %v", v.RevokedReason, err)
	}
	if got, want := auditOf(t, admin, "version/"+label+"/v3"), []string{"version.revoke: segfaults in libc", "version.push: "}; !cmp.Equal(got, want) {
		t.Errorf("audit of v3:\n%s", cmp.Diff(want, got))
	}
}

// TestUnknownGateAllowedIsAudited: with the relaxing policy an unknown
// gate rolls out unforced and its start entry says so.
func TestUnknownGateAllowedIsAudited(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	svc, err := rollout.NewService(ctx, e.st, rollout.ServiceOptions{Clock: e.clock, AllowUnknownGate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.SetRings(ctx, "test", "", threeRings); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PushVersion(ctx, "test", rollout.Version{Label: label, Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	r, err := svc.StartRollout(ctx, "test", rollout.StartRequest{Label: label, Version: "v1"})
	if err != nil {
		t.Fatalf("unknown gate under allowUnknownGate: %v", err)
	}
	l, err := e.admin.Audit(ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + r.ID}, rollout.Page{})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("audit: %+v, %v", l, err)
	}
	var d struct {
		Gate           string `json:"gate"`
		UnknownAllowed bool   `json:"unknownGateAllowed"`
	}
	if err := json.Unmarshal(l.Items[0].Details, &d); err != nil || d.Gate != rollout.GateUnknown || !d.UnknownAllowed {
		t.Errorf("start details %s: want gate unknown, unknownGateAllowed", l.Items[0].Details)
	}
}

// TestRingPlanPrecedence: the config wins. Plans it names are applied at
// start and refused through the API (409); others are the API's.
func TestRingPlanPrecedence(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	mustPush(t, e.admin, label, "v1", passReport)
	mustPush(t, e.admin, "other", "v1", passReport)
	cfg := map[string][]rollout.Ring{"": threeRings, label: {{Name: "all", Percent: 100}}}
	if err := e.svc.ApplyConfigRings(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"", label} {
		err := e.admin.SetRings(ctx, l, []rollout.Ring{{Name: "x", Percent: 100}})
		wantAPIError(t, "changing a config-managed plan "+l, err, 409)
	}
	if err := e.admin.SetRings(ctx, "other", []rollout.Ring{{Name: "x", Percent: 100}}); err != nil {
		t.Errorf("a plan the config does not name: %v", err)
	}
	// A restart with the same config changes nothing and keeps the API's plan.
	before := auditOf(t, e.admin, "rings/other")
	if err := e.svc.ApplyConfigRings(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	rings, err := e.st.GetRings(ctx, "other")
	if err != nil || len(rings) != 1 || rings[0].Name != "x" {
		t.Errorf("the API's plan after a restart: %+v, %v", rings, err)
	}
	if after := auditOf(t, e.admin, "rings/other"); !cmp.Equal(before, after) {
		t.Errorf("a restart wrote %v", after)
	}
}
