package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

func newRollout(label, version string) rollout.Rollout {
	return rollout.Rollout{
		Label: label, Version: version, FromVersion: "v0", State: rollout.StateBaking,
		RingStartedAt: T0, CreatedAt: T0, UpdatedAt: T0,
		Rings: []rollout.Ring{{Name: "canary", Orgs: []string{"org-a"}, BakeTime: time.Hour}, {Name: "all", Percent: 100}},
	}
}

func testRollouts(t *testing.T, s rollout.Store) {
	MustVersion(t, s, "img", "v1")
	MustVersion(t, s, "img", "v2")
	missing := newRollout("img", "v9")
	wantErr(t, "CreateRollout of a missing version",
		s.CreateRollout(ctx(t), &missing, nil, Audit("rollout.start", "rollout/")), rollout.ErrNotFound)

	r := newRollout("img", "v1")
	r.Expedited, r.Forced, r.ForceReason = true, true, "hotfix for INC-1"
	must(t, s.CreateRollout(ctx(t), &r, nil, Audit("rollout.start", "rollout/new")))
	if r.ID == "" || r.Revision != 1 {
		t.Fatalf("created rollout has ID %q and revision %d, want an ID and revision 1", r.ID, r.Revision)
	}
	got, err := s.GetRollout(ctx(t), r.ID)
	must(t, err)
	if d := cmp.Diff(r, got, equateEmpty); d != "" {
		t.Errorf("GetRollout (-want +got):\n%s", d)
	}
	_, err = s.GetRollout(ctx(t), "r-nope")
	wantErr(t, "GetRollout of a missing id", err, rollout.ErrNotFound)

	dup := newRollout("img", "v2")
	dup.ID = r.ID
	wantErr(t, "CreateRollout with an existing ID", s.CreateRollout(ctx(t), &dup, nil, Audit("rollout.start", "x")), rollout.ErrConflict)
	second := newRollout("img", "v2")
	wantErr(t, "a second unfinished rollout of one label",
		s.CreateRollout(ctx(t), &second, nil, Audit("rollout.start", "x")), rollout.ErrConflict)

	stale := r
	r.State, r.Reason, r.Ring, r.Approved = rollout.StatePaused, "looking at INC-2", 1, 1
	r.UpdatedAt = T0.Add(time.Minute)
	must(t, s.UpdateRollout(ctx(t), &r, Audit("rollout.pause", "rollout/"+r.ID)))
	if r.Revision != 2 {
		t.Errorf("revision after one update = %d, want 2", r.Revision)
	}
	before := len(allAudit(t, s))
	stale.State = rollout.StateHalted
	wantErr(t, "UpdateRollout with a stale revision",
		s.UpdateRollout(ctx(t), &stale, Audit("rollout.halt", "rollout/"+r.ID)), rollout.ErrConflict)
	if after := len(allAudit(t, s)); after != before {
		t.Errorf("a rejected UpdateRollout wrote %d audit entries, want none", after-before)
	}
	if stale.Revision != 1 {
		t.Errorf("a rejected update changed the caller's revision to %d", stale.Revision)
	}
	got, err = s.GetRollout(ctx(t), r.ID)
	must(t, err)
	if d := cmp.Diff(r, got, equateEmpty); d != "" {
		t.Errorf("after a rejected stale update the stored rollout should be the last accepted one (-want +got):\n%s", d)
	}
	ghost := newRollout("img", "v1")
	ghost.ID, ghost.Revision = "r-ghost", 1
	wantErr(t, "UpdateRollout of a missing rollout", s.UpdateRollout(ctx(t), &ghost, Audit("x", "x")), rollout.ErrNotFound)

	last, err := s.LastCompleted(ctx(t), "img")
	must(t, err)
	if last != "" {
		t.Errorf("LastCompleted before any completion = %q, want \"\"", last)
	}
	r.State = rollout.StateCompleted
	must(t, s.UpdateRollout(ctx(t), &r, Audit("rollout.complete", "rollout/"+r.ID)))
	r2 := newRollout("img", "v2")
	must(t, s.CreateRollout(ctx(t), &r2, nil, Audit("rollout.start", "rollout/new")))
	last, err = s.LastCompleted(ctx(t), "img")
	must(t, err)
	if last != "v1" {
		t.Errorf("LastCompleted with v1 completed and v2 baking = %q, want v1", last)
	}
	r2.State = rollout.StateCompleted
	must(t, s.UpdateRollout(ctx(t), &r2, Audit("rollout.complete", "rollout/"+r2.ID)))
	last, err = s.LastCompleted(ctx(t), "img")
	must(t, err)
	if last != "v2" {
		t.Errorf("LastCompleted = %q, want v2", last)
	}
}

// testRolloutAutoRollback: the choice to roll back on an unhealthy ring
// is stored with the rollout, so a restarted controller honours it.
func testRolloutAutoRollback(t *testing.T, s rollout.Store) {
	tests := []struct {
		name             string
		created, updated bool
	}{
		{"on", true, true},
		{"off", false, false},
		{"turned on", false, true},
		{"turned off", true, false},
	}
	for i, tc := range tests {
		label := fmt.Sprintf("img-%d", i) // one unfinished rollout per label
		MustVersion(t, s, label, "v1")
		r := newRollout(label, "v1")
		r.AutoRollback = tc.created
		must(t, s.CreateRollout(ctx(t), &r, nil, Audit("rollout.start", "rollout/new")))
		got, err := s.GetRollout(ctx(t), r.ID)
		must(t, err)
		if got.AutoRollback != tc.created {
			t.Errorf("%s: GetRollout after create: AutoRollback = %v, want %v", tc.name, got.AutoRollback, tc.created)
		}
		r.AutoRollback = tc.updated
		r.State = rollout.StateHalted
		must(t, s.UpdateRollout(ctx(t), &r, Audit("rollout.halt", "rollout/"+r.ID)))
		got, err = s.GetRollout(ctx(t), r.ID)
		must(t, err)
		if d := cmp.Diff(r, got, equateEmpty); d != "" {
			t.Errorf("%s: GetRollout after update (-want +got):\n%s", tc.name, d)
		}
		list, _, err := s.ListRollouts(ctx(t), label, nil, rollout.Page{})
		must(t, err)
		if len(list) != 1 || list[0].AutoRollback != tc.updated {
			t.Errorf("%s: ListRollouts = %+v, want one rollout with AutoRollback %v", tc.name, list, tc.updated)
		}
	}
}

func testRolloutSupersede(t *testing.T, s rollout.Store) {
	MustVersion(t, s, "img", "v1")
	MustVersion(t, s, "img", "v2")
	old := newRollout("img", "v1")
	must(t, s.CreateRollout(ctx(t), &old, nil, Audit("rollout.start", "rollout/new")))
	read := old
	old.State = rollout.StateHalted
	must(t, s.UpdateRollout(ctx(t), &old, Audit("rollout.halt", "rollout/"+old.ID)))

	before := len(allAudit(t, s))
	hot := newRollout("img", "v2")
	hot.Expedited = true
	wantErr(t, "superseding a rollout read before it changed",
		s.CreateRollout(ctx(t), &hot, &read, Audit("rollout.start", "rollout/new")), rollout.ErrConflict)
	if after := len(allAudit(t, s)); after != before {
		t.Errorf("a rejected CreateRollout wrote %d audit entries", after-before)
	}
	if hot.ID != "" {
		t.Errorf("a rejected CreateRollout assigned ID %q to the caller's rollout", hot.ID)
	}
	list, _, err := s.ListRollouts(ctx(t), "img", nil, rollout.Page{})
	must(t, err)
	if len(list) != 1 {
		t.Errorf("a rejected CreateRollout left %d rollouts, want 1", len(list))
	}

	haltedAt := old
	must(t, s.CreateRollout(ctx(t), &hot, &old, Audit("rollout.start", "rollout/new")))
	// The superseded rollout's state change has its own entry, in the
	// same transaction.
	var sup []rollout.AuditEntry
	for _, a := range allAudit(t, s)[:len(allAudit(t, s))-before] {
		if a.Subject == "rollout/"+old.ID {
			sup = append(sup, a)
		}
	}
	if want := rollout.SupersedeAudit(Audit("rollout.start", "rollout/new"), haltedAt, hot); len(sup) != 1 || sup[0].Action != want.Action ||
		sup[0].Reason != want.Reason || sup[0].Actor != want.Actor {
		t.Errorf("audit of the superseded rollout: %+v, want one %+v", sup, want)
	}
	if hot.Supersedes != old.ID {
		t.Errorf("Supersedes = %q, want %q", hot.Supersedes, old.ID)
	}
	if old.State != rollout.StateSuperseded || old.Revision != 3 {
		t.Errorf("superseded rollout as returned: state %s revision %d, want superseded 3", old.State, old.Revision)
	}
	got, err := s.GetRollout(ctx(t), old.ID)
	must(t, err)
	if d := cmp.Diff(old, got, equateEmpty); d != "" {
		t.Errorf("stored superseded rollout (-want +got):\n%s", d)
	}
	got, err = s.GetRollout(ctx(t), hot.ID)
	must(t, err)
	if d := cmp.Diff(hot, got, equateEmpty); d != "" {
		t.Errorf("stored hotfix rollout (-want +got):\n%s", d)
	}
}

func testListRollouts(t *testing.T, s rollout.Store) {
	var ids []string // oldest first
	for i, label := range []string{"a", "b", "a", "b", "a"} {
		v := fmt.Sprintf("v%d", i)
		MustVersion(t, s, label, v)
		r := newRollout(label, v)
		r.State = rollout.StateCompleted
		if i == 4 {
			r.State = rollout.StateBaking
		}
		must(t, s.CreateRollout(ctx(t), &r, nil, Audit("rollout.start", "rollout/new")))
		ids = append(ids, r.ID)
	}
	list := func(label string, states []rollout.State, limit int) []string {
		t.Helper()
		var out []string
		p := rollout.Page{Limit: limit}
		for range 10 {
			rs, next, err := s.ListRollouts(ctx(t), label, states, p)
			must(t, err)
			for _, r := range rs {
				out = append(out, r.ID)
			}
			if next == "" {
				return out
			}
			p.After = next
		}
		t.Fatal("ListRollouts never ends")
		return nil
	}
	for _, tc := range []struct {
		label  string
		states []rollout.State
		limit  int
		want   []string
	}{
		{"", nil, 0, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"", nil, 2, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"a", nil, 1, []string{ids[4], ids[2], ids[0]}},
		{"a", []rollout.State{rollout.StateCompleted}, 0, []string{ids[2], ids[0]}},
		{"", []rollout.State{rollout.StateBaking, rollout.StatePaused}, 0, []string{ids[4]}},
		{"c", nil, 0, nil},
	} {
		if d := cmp.Diff(tc.want, list(tc.label, tc.states, tc.limit)); d != "" {
			t.Errorf("ListRollouts(%q, %v, limit %d) (-want +got):\n%s", tc.label, tc.states, tc.limit, d)
		}
	}
}
