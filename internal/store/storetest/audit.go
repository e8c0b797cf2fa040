package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imagegate/imagegate/internal/rollout"
)

func testAudit(t *testing.T, s rollout.Store) {
	entries := []rollout.AuditEntry{
		{At: T0, Actor: "token:admin", Action: "pin.set", Subject: "pin/org-a/img", Reason: "INC-1",
			Details: json.RawMessage(`{"version":"v1"}`)},
		{At: T0.Add(time.Minute), Actor: "token:org-a", Action: "pin.set", Subject: "pin/org-a/other"},
		{At: T0.Add(2 * time.Minute), Actor: "token:admin", Action: "pin.clear", Subject: "pin/org-b/img"},
		{At: T0.Add(3 * time.Minute), Actor: "token:admin", Action: "pin.set", Subject: "pin/Org-A/img"},
	}
	MustVersion(t, s, "img", "v1")
	MustVersion(t, s, "other", "v1")
	base := len(allAudit(t, s))
	for i, e := range entries {
		// Each entry rides on a real change, as the contract demands.
		must(t, s.PutPin(ctx(t), rollout.Pin{Org: fmt.Sprint("o", i), Label: "img", Version: "v1", ExpiresAt: T0.Add(time.Hour)}, e))
	}
	beforeZero := time.Now().Add(-time.Second)
	must(t, s.PutPin(ctx(t), rollout.Pin{Org: "o9", Label: "img", Version: "v1", ExpiresAt: T0.Add(time.Hour)},
		rollout.AuditEntry{Actor: "token:admin", Action: "pin.set", Subject: "pin/o9/img"}))

	all := allAudit(t, s)
	if len(all) != base+5 {
		t.Fatalf("audit has %d entries, want %d", len(all), base+5)
	}
	if zero := all[0]; zero.At.Before(beforeZero) || zero.At.After(time.Now().Add(time.Second)) || zero.ID == 0 {
		t.Errorf("entry written with zero ID and time got ID %d, At %v; want both assigned, At about now", zero.ID, zero.At)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Fatalf("audit not newest first: ID %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	got := all[1:5]
	want := []rollout.AuditEntry{entries[3], entries[2], entries[1], entries[0]}
	if d := cmp.Diff(want, got, cmpopts.IgnoreFields(rollout.AuditEntry{}, "ID")); d != "" {
		t.Errorf("audit entries as written (-want +got):\n%s", d)
	}

	subjects := func(f rollout.AuditFilter, limit int) []string {
		t.Helper()
		var out []string
		p := rollout.Page{Limit: limit}
		for range 20 {
			es, next, err := s.ListAudit(ctx(t), f, p)
			must(t, err)
			for _, e := range es {
				out = append(out, e.Subject)
			}
			if next == "" {
				return out
			}
			p.After = next
		}
		t.Fatal("ListAudit never ends")
		return nil
	}
	for _, tc := range []struct {
		name string
		f    rollout.AuditFilter
		want []string
	}{
		{"actor", rollout.AuditFilter{Actor: "token:org-a"}, []string{"pin/org-a/other"}},
		{"action", rollout.AuditFilter{Action: "pin.clear"}, []string{"pin/org-b/img"}},
		{"prefix is case-sensitive", rollout.AuditFilter{SubjectPrefix: "pin/org-a/"}, []string{"pin/org-a/other", "pin/org-a/img"}},
		{"prefix with LIKE wildcards", rollout.AuditFilter{SubjectPrefix: "pin/org_a"}, nil},
		{"since inclusive until exclusive", rollout.AuditFilter{Since: T0.Add(time.Minute), Until: T0.Add(3 * time.Minute)},
			[]string{"pin/org-b/img", "pin/org-a/other"}},
		{"combined", rollout.AuditFilter{Actor: "token:admin", Action: "pin.set", Since: T0, Until: T0.Add(time.Hour)},
			[]string{"pin/Org-A/img", "pin/org-a/img"}},
	} {
		for _, limit := range []int{0, 1} {
			if d := cmp.Diff(tc.want, subjects(tc.f, limit)); d != "" {
				t.Errorf("ListAudit %s, limit %d (-want +got):\n%s", tc.name, limit, d)
			}
		}
	}
}
