package rollout_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/sqlite"
)

// TestApplyConfigRingsIdempotent: restarting with the same config stores the
// plans once; a changed plan is stored again, each time with an audit entry.
func TestApplyConfigRingsIdempotent(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ig.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	// As config.Parse reads rings: [{name: canary, orgs: [a], bakeTime: 1h},
	// {name: all, percent: 100}] and images: {u: {rings: [{name: all,
	// percent: 100, bakeTime: 5m}]}}.
	plans := map[string][]rollout.Ring{
		"":  {{Name: "canary", Orgs: []string{"a"}, BakeTime: time.Hour}, {Name: "all", Percent: 100}},
		"u": {{Name: "all", Percent: 100, BakeTime: 5 * time.Minute}},
	}
	audits := func() int {
		es, _, err := st.ListAudit(ctx, rollout.AuditFilter{Actor: "config"}, rollout.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	for range 2 {
		if err := svc.ApplyConfigRings(ctx, plans); err != nil {
			t.Fatal(err)
		}
	}
	if n := audits(); n != 2 {
		t.Fatalf("%d audit entries by config after two identical starts, want 2 (global and u)", n)
	}
	plans["u"][0].BakeTime = 10 * time.Minute
	if err := svc.ApplyConfigRings(ctx, plans); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetRings(ctx, "u")
	if err != nil || got[0].BakeTime != 10*time.Minute || audits() != 3 {
		t.Fatalf("changed plan: %+v, %v, %d audit entries", got, err, audits())
	}
}
