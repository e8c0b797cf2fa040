package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

func testPins(t *testing.T, s rollout.Store) {
	MustVersion(t, s, "img", "v1")
	MustVersion(t, s, "img", "v2")
	MustVersion(t, s, "other", "v1")
	pin := func(org, label, version string, expires time.Time) rollout.Pin {
		return rollout.Pin{Org: org, Label: label, Version: version, Owner: "alice", Reason: "INC-7",
			ExpiresAt: expires, CreatedBy: "token:org", CreatedAt: T0}
	}
	wantErr(t, "PutPin to a missing version",
		s.PutPin(ctx(t), pin("org-a", "img", "v9", T0.Add(time.Hour)), Audit("pin.set", "pin/org-a/img")), rollout.ErrNotFound)
	a := pin("org-a", "img", "v1", T0.Add(time.Hour))
	a2 := pin("org-a", "other", "v1", T0.Add(time.Hour))
	b := pin("org-b", "img", "v1", T0) // expires exactly at T0
	c := pin("org-c", "img", "v2", T0.Add(-time.Hour))
	c.OverrideRevoked = true
	for _, p := range []rollout.Pin{a, a2, b, c} {
		must(t, s.PutPin(ctx(t), p, Audit("pin.set", "pin/"+p.Org+"/"+p.Label)))
	}
	a.Version, a.Reason = "v2", "INC-8"
	must(t, s.PutPin(ctx(t), a, Audit("pin.set", "pin/org-a/img")))

	list := func(org, label string, withExpired bool, limit int) []rollout.Pin {
		t.Helper()
		var out []rollout.Pin
		p := rollout.Page{Limit: limit}
		for range 10 {
			ps, next, err := s.ListPins(ctx(t), org, label, withExpired, T0, p)
			must(t, err)
			out = append(out, ps...)
			if next == "" {
				return out
			}
			p.After = next
		}
		t.Fatal("ListPins never ends")
		return nil
	}
	for _, tc := range []struct {
		name        string
		org, label  string
		withExpired bool
		limit       int
		want        []rollout.Pin
	}{
		{"unexpired", "", "", false, 0, []rollout.Pin{a, a2}},
		{"all", "", "", true, 0, []rollout.Pin{a, a2, b, c}},
		{"all paged", "", "", true, 1, []rollout.Pin{a, a2, b, c}},
		{"org", "org-a", "", false, 0, []rollout.Pin{a, a2}},
		{"label", "", "img", true, 0, []rollout.Pin{a, b, c}},
		{"org and label", "org-c", "img", true, 0, []rollout.Pin{c}},
		{"expired only match", "org-b", "", false, 0, nil},
	} {
		if d := cmp.Diff(tc.want, list(tc.org, tc.label, tc.withExpired, tc.limit)); d != "" {
			t.Errorf("ListPins %s (-want +got):\n%s", tc.name, d)
		}
	}
	must(t, s.DeletePin(ctx(t), "org-a", "img", Audit("pin.clear", "pin/org-a/img")))
	before := len(allAudit(t, s))
	wantErr(t, "DeletePin twice", s.DeletePin(ctx(t), "org-a", "img", Audit("pin.clear", "pin/org-a/img")), rollout.ErrNotFound)
	if after := len(allAudit(t, s)); after != before {
		t.Errorf("a failed DeletePin wrote an audit entry")
	}
	if d := cmp.Diff([]rollout.Pin{a2}, list("org-a", "", true, 0)); d != "" {
		t.Errorf("pins after delete (-want +got):\n%s", d)
	}
}
