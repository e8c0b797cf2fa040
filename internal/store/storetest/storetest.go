// Package storetest is the one test suite every rollout.Store passes.
// A store's package runs it against a real database:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) rollout.Store { return openFresh(t) })
//	}
//
// open must return an empty, migrated store that the test owns (a temp
// file, a fresh schema) and close it in t.Cleanup.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imagegate/imagegate/internal/rollout"
)

// T0 is the suite's clock origin; whole seconds, so every store keeps the
// times exactly.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Run runs every contract test against stores made by open.
func Run(t *testing.T, open func(t *testing.T) rollout.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s rollout.Store)
	}{
		{"Images", testImages},
		{"Versions", testVersions},
		{"Rings", testRings},
		{"Rollouts", testRollouts},
		{"RolloutSupersede", testRolloutSupersede},
		{"RolloutAutoRollback", testRolloutAutoRollback},
		{"ListRollouts", testListRollouts},
		{"Pins", testPins},
		{"Audit", testAudit},
		{"Tokens", testTokens},
		{"Events", testEvents},
		{"EventsConcurrentRetries", testEventsConcurrent},
		{"AssignRun", testAssignRun},
		{"Served", testServed},
		{"Generation", testGeneration},
		{"Lease", testLease},
		{"LeaseConcurrent", testLeaseConcurrent},
		{"Cursors", testCursors},
	}
	for _, tc := range append(tests, telemetryTests...) {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// Audit returns an audit entry for action on subject by a test actor.
func Audit(action, subject string) rollout.AuditEntry {
	return rollout.AuditEntry{Actor: "token:test", Action: action, Subject: subject}
}

// MustImage registers label.
func MustImage(tb testing.TB, s rollout.Store, label string) {
	tb.Helper()
	if err := s.PutImage(context.Background(), rollout.Image{Label: label, CreatedAt: T0}, Audit("image.create", "image/"+label)); err != nil {
		tb.Fatal(err)
	}
}

// MustVersion registers label (if needed) and version with a pass gate.
func MustVersion(tb testing.TB, s rollout.Store, label, version string) rollout.Version {
	tb.Helper()
	MustImage(tb, s, label)
	v := rollout.Version{Label: label, Version: version, Gate: rollout.GatePass, CreatedAt: T0}
	if err := s.CreateVersion(context.Background(), v, Audit("version.push", "version/"+label+"/"+version)); err != nil {
		tb.Fatal(err)
	}
	return v
}

func allAudit(t *testing.T, s rollout.Store) []rollout.AuditEntry {
	t.Helper()
	var all []rollout.AuditEntry
	p := rollout.Page{Limit: 1000}
	for {
		got, next, err := s.ListAudit(ctx(t), rollout.AuditFilter{}, p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
		if next == "" {
			return all
		}
		p.After = next
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want one wrapping %v", what, err, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var equateEmpty = cmpopts.EquateEmpty()

func testImages(t *testing.T, s rollout.Store) {
	for _, l := range []string{"b", "a", "c", "b"} {
		MustImage(t, s, l)
	}
	if n := len(allAudit(t, s)); n != 3 {
		t.Errorf("audit has %d entries after creating 3 images (one twice), want 3: a no-op writes none", n)
	}
	got, next, err := s.ListImages(ctx(t), rollout.Page{Limit: 2})
	must(t, err)
	want := []rollout.Image{{Label: "a", CreatedAt: T0}, {Label: "b", CreatedAt: T0}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("first page (-want +got):\n%s", d)
	}
	if next == "" {
		t.Fatal("first page of 3 images with limit 2 returned no cursor")
	}
	// Rows added before and after the cursor: the next page neither
	// repeats nor skips.
	MustImage(t, s, "aa")
	MustImage(t, s, "d")
	got, next, err = s.ListImages(ctx(t), rollout.Page{After: next, Limit: 2})
	must(t, err)
	want = []rollout.Image{{Label: "c", CreatedAt: T0}, {Label: "d", CreatedAt: T0}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("second page (-want +got):\n%s", d)
	}
	if next != "" {
		got, _, err := s.ListImages(ctx(t), rollout.Page{After: next, Limit: 2})
		if err != nil || len(got) != 0 {
			t.Errorf("page after the last: %v, %v; want nothing", got, err)
		}
	}
	wantErr(t, "PutImage with empty label", s.PutImage(ctx(t), rollout.Image{}, Audit("image.create", "image/")), rollout.ErrInvalid)
}

func testVersions(t *testing.T, s rollout.Store) {
	v1 := rollout.Version{
		Label: "img", Version: "v1", Gate: rollout.GateFail,
		Snapshot:    json.RawMessage(`{"schema":1}`),
		CheckReport: json.RawMessage(`{"verdict":"fail"}`),
		CreatedAt:   T0,
	}
	wantErr(t, "CreateVersion of an unknown image", s.CreateVersion(ctx(t), v1, Audit("version.push", "x")), rollout.ErrNotFound)
	MustImage(t, s, "img")
	must(t, s.CreateVersion(ctx(t), v1, Audit("version.push", "version/img/v1")))
	before := len(allAudit(t, s))
	wantErr(t, "CreateVersion twice", s.CreateVersion(ctx(t), v1, Audit("version.push", "version/img/v1")), rollout.ErrConflict)
	if after := len(allAudit(t, s)); after != before {
		t.Errorf("a failed CreateVersion wrote an audit entry (%d -> %d)", before, after)
	}
	MustVersion(t, s, "img", "v2")
	MustVersion(t, s, "img", "v3")
	MustVersion(t, s, "other", "v9")

	got, err := s.GetVersion(ctx(t), "img", "v1", true)
	must(t, err)
	if d := cmp.Diff(v1, got); d != "" {
		t.Errorf("GetVersion with blobs (-want +got):\n%s", d)
	}
	got, err = s.GetVersion(ctx(t), "img", "v1", false)
	must(t, err)
	bare := v1
	bare.Snapshot, bare.CheckReport = nil, nil
	if d := cmp.Diff(bare, got); d != "" {
		t.Errorf("GetVersion without blobs (-want +got):\n%s", d)
	}
	_, err = s.GetVersion(ctx(t), "img", "v4", false)
	wantErr(t, "GetVersion of a missing version", err, rollout.ErrNotFound)

	var names []string
	p := rollout.Page{Limit: 2}
	for pages := 0; ; pages++ {
		vs, next, err := s.ListVersions(ctx(t), "img", p)
		must(t, err)
		for _, v := range vs {
			if v.Snapshot != nil || v.CheckReport != nil {
				t.Errorf("ListVersions returned blobs for %s", v.Version)
			}
			names = append(names, v.Version)
		}
		if next == "" {
			break
		}
		if pages > 3 {
			t.Fatal("ListVersions never ends")
		}
		p.After = next
	}
	if d := cmp.Diff([]string{"v3", "v2", "v1"}, names); d != "" {
		t.Errorf("ListVersions newest first (-want +got):\n%s", d)
	}

	before = len(allAudit(t, s))
	must(t, s.RevokeVersion(ctx(t), "img", "v2", "CVE-2026-1", Audit("version.revoke", "version/img/v2")))
	must(t, s.RevokeVersion(ctx(t), "img", "v2", "again", Audit("version.revoke", "version/img/v2")))
	if after := len(allAudit(t, s)); after != before+1 {
		t.Errorf("revoking twice wrote %d audit entries, want 1", after-before)
	}
	got, err = s.GetVersion(ctx(t), "img", "v2", false)
	must(t, err)
	if !got.Revoked || got.RevokedReason != "CVE-2026-1" {
		t.Errorf("after revoke: revoked=%v reason=%q, want true and the first reason", got.Revoked, got.RevokedReason)
	}
	wantErr(t, "RevokeVersion of a missing version",
		s.RevokeVersion(ctx(t), "img", "nope", "x", Audit("version.revoke", "version/img/nope")), rollout.ErrNotFound)
}

func testRings(t *testing.T, s rollout.Store) {
	_, err := s.GetRings(ctx(t), "img")
	wantErr(t, "GetRings with no plan", err, rollout.ErrNotFound)
	global := []rollout.Ring{
		{Name: "canary", Orgs: []string{"org-a", "org-b"}, BakeTime: time.Hour, MinJobs: 10, ManualApproval: true},
		{Name: "early", Percent: 10, BakeTime: 2 * time.Hour, ControlPercent: 5},
		{Name: "all", Percent: 100},
	}
	own := []rollout.Ring{{Name: "only", Percent: 100, BakeTime: time.Minute}}
	must(t, s.PutRings(ctx(t), "", global, Audit("rings.set", "rings/")))
	must(t, s.PutRings(ctx(t), "img", own, Audit("rings.set", "rings/img")))
	for _, tc := range []struct {
		label string
		want  []rollout.Ring
	}{
		{"img", own},
		{"other", global},
		{"", global},
	} {
		got, err := s.GetRings(ctx(t), tc.label)
		must(t, err)
		if d := cmp.Diff(tc.want, got, equateEmpty); d != "" {
			t.Errorf("GetRings(%q) (-want +got):\n%s", tc.label, d)
		}
	}
	must(t, s.PutRings(ctx(t), "img", nil, Audit("rings.clear", "rings/img")))
	got, err := s.GetRings(ctx(t), "img")
	must(t, err)
	if d := cmp.Diff(global, got, equateEmpty); d != "" {
		t.Errorf("GetRings after clearing the label's plan (-want +got):\n%s", d)
	}
}

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

	must(t, s.CreateRollout(ctx(t), &hot, &old, Audit("rollout.start", "rollout/new")))
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
	list := func(label string, states []string, limit int) []string {
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
		states []string
		limit  int
		want   []string
	}{
		{"", nil, 0, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"", nil, 2, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"a", nil, 1, []string{ids[4], ids[2], ids[0]}},
		{"a", []string{rollout.StateCompleted}, 0, []string{ids[2], ids[0]}},
		{"", []string{rollout.StateBaking, rollout.StatePaused}, 0, []string{ids[4]}},
		{"c", nil, 0, nil},
	} {
		if d := cmp.Diff(tc.want, list(tc.label, tc.states, tc.limit)); d != "" {
			t.Errorf("ListRollouts(%q, %v, limit %d) (-want +got):\n%s", tc.label, tc.states, tc.limit, d)
		}
	}
}

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

func testTokens(t *testing.T, s rollout.Store) {
	tokens := []rollout.Token{
		{ID: "t1", Name: "bootstrap", Role: rollout.RoleAdmin, Hash: []byte("h1"), CreatedAt: T0},
		{ID: "t2", Name: "runners", Role: rollout.RoleRunner, Hash: []byte("h2"), CreatedAt: T0},
		{ID: "t3", Name: "org a", Role: rollout.RoleOrgPrefix + "org-a", Hash: []byte("h3"), CreatedAt: T0},
	}
	for _, tok := range tokens {
		must(t, s.CreateToken(ctx(t), tok, Audit("token.create", "token/"+tok.ID)))
	}
	wantErr(t, "CreateToken with an existing hash",
		s.CreateToken(ctx(t), rollout.Token{ID: "t4", Role: rollout.RoleAdmin, Hash: []byte("h1")}, Audit("token.create", "token/t4")),
		rollout.ErrConflict)
	wantErr(t, "CreateToken with an existing ID",
		s.CreateToken(ctx(t), rollout.Token{ID: "t1", Role: rollout.RoleAdmin, Hash: []byte("h9")}, Audit("token.create", "token/t1")),
		rollout.ErrConflict)
	if n := len(allAudit(t, s)); n != 3 {
		t.Errorf("audit has %d entries after 3 tokens and 2 rejected ones, want 3", n)
	}
	got, err := s.TokenByHash(ctx(t), []byte("h3"))
	must(t, err)
	if d := cmp.Diff(tokens[2], got); d != "" {
		t.Errorf("TokenByHash (-want +got):\n%s", d)
	}
	_, err = s.TokenByHash(ctx(t), []byte("nope"))
	wantErr(t, "TokenByHash of an unknown hash", err, rollout.ErrNotFound)
	for role, want := range map[string]int{rollout.RoleAdmin: 1, rollout.RoleRunner: 1, "org:org-b": 0, "": 3} {
		n, err := s.CountTokens(ctx(t), role)
		must(t, err)
		if n != want {
			t.Errorf("CountTokens(%q) = %d, want %d", role, n, want)
		}
	}
}

// Events makes n events of label/version spread over rings 0-2 and the
// three outcomes, starting at T0 one second apart, with IDs prefix-0...
func Events(prefix, label, version string, n int) []rollout.JobEvent {
	outcomes := []string{rollout.OutcomeSucceeded, rollout.OutcomeFailed, rollout.OutcomeCanceled, rollout.OutcomeSucceeded}
	evs := make([]rollout.JobEvent, n)
	for i := range evs {
		evs[i] = rollout.JobEvent{
			JobID: fmt.Sprintf("%s-%d", prefix, i), Org: fmt.Sprintf("org-%d", i%7), Label: label, Version: version,
			Ring: i % 3, Outcome: outcomes[i%4], StartedAt: T0.Add(time.Duration(i) * time.Second),
			DurationMs: int64(1000 + i), ErrorText: map[bool]string{true: "exit 1"}[i%4 == 1],
		}
	}
	return evs
}

func testEvents(t *testing.T, s rollout.Store) {
	evs := Events("job", "img", "v1", 12)
	n, err := s.AppendEvents(ctx(t), evs[:8])
	must(t, err)
	if n != 8 {
		t.Errorf("first append stored %d new events, want 8", n)
	}
	// A retry that overlaps, with a duplicate inside the batch.
	n, err = s.AppendEvents(ctx(t), append(evs[6:], evs[11]))
	must(t, err)
	if n != 4 {
		t.Errorf("overlapping retry stored %d new events, want 4", n)
	}
	n, err = s.AppendEvents(ctx(t), nil)
	if err != nil || n != 0 {
		t.Errorf("empty append: %d, %v", n, err)
	}
	must(t, err)
	other := Events("other", "img", "v2", 5)
	_, err = s.AppendEvents(ctx(t), other)
	must(t, err)

	// i = 0..11: outcomes S F C S S F C S S F C S, rings 0 1 2 0 1 2 ...
	for _, tc := range []struct {
		version string
		ring    int
		since   time.Time
		want    rollout.JobCounts
	}{
		{"v1", -1, time.Time{}, rollout.JobCounts{Total: 12, Succeeded: 6, Failed: 3, Canceled: 3}},
		{"v1", 0, time.Time{}, rollout.JobCounts{Total: 4, Succeeded: 2, Failed: 1, Canceled: 1}},
		{"v1", -1, T0.Add(6 * time.Second), rollout.JobCounts{Total: 6, Succeeded: 3, Failed: 1, Canceled: 2}},
		{"v1", 2, T0.Add(6 * time.Second), rollout.JobCounts{Total: 2, Succeeded: 2}},
		{"v1", 1, T0.Add(time.Hour), rollout.JobCounts{}},
		{"v2", -1, time.Time{}, rollout.JobCounts{Total: 5, Succeeded: 3, Failed: 1, Canceled: 1}},
		{"v3", -1, time.Time{}, rollout.JobCounts{}},
	} {
		got, err := s.CountJobs(ctx(t), "img", tc.version, tc.ring, tc.since)
		must(t, err)
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("CountJobs(%s, ring %d, since %v) (-want +got):\n%s", tc.version, tc.ring, tc.since, d)
		}
	}
	bad := []rollout.JobEvent{evs[0], {Label: "img"}}
	_, err = s.AppendEvents(ctx(t), bad)
	wantErr(t, "an event without jobId", err, rollout.ErrInvalid)
}

// testEventsConcurrent has ten runners retry the same batches at once, in
// different orders: every event is stored once and counted new once.
func testEventsConcurrent(t *testing.T, s rollout.Store) {
	evs := Events("job", "img", "v1", 500)
	const workers = 10
	var wg sync.WaitGroup
	added := make([]int, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for b := range 5 {
				batch := (b + w) % 5
				chunk := append([]rollout.JobEvent(nil), evs[batch*100:(batch+1)*100]...)
				if w%2 == 1 {
					for i, j := 0, len(chunk)-1; i < j; i, j = i+1, j-1 {
						chunk[i], chunk[j] = chunk[j], chunk[i]
					}
				}
				n, err := s.AppendEvents(context.Background(), chunk)
				if err != nil {
					errs[w] = err
					return
				}
				added[w] += n
			}
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	total := 0
	for _, n := range added {
		total += n
	}
	if total != 500 {
		t.Errorf("concurrent retries reported %d new events in all, want 500", total)
	}
	c, err := s.CountJobs(ctx(t), "img", "v1", -1, time.Time{})
	must(t, err)
	if c.Total != 500 {
		t.Errorf("stored %d events, want 500", c.Total)
	}
}

func testAssignRun(t *testing.T, s rollout.Store) {
	const n = 20
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = s.AssignRun(context.Background(), "run-1", "img", fmt.Sprint("v", i), T0)
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("concurrent AssignRun answered %q and %q: first write must win for everyone", got[0], got[i])
		}
	}
	winner := got[0]
	if v, err := s.AssignRun(ctx(t), "run-1", "img", "v-late", T0.Add(time.Minute)); err != nil || v != winner {
		t.Errorf("later AssignRun = %q, %v; want %q", v, err, winner)
	}
	if v, err := s.AssignRun(ctx(t), "run-1", "other", "v-other", T0); err != nil || v != "v-other" {
		t.Errorf("AssignRun of the same run for another label = %q, %v; want its own version", v, err)
	}
	must(t, s.ForgetRuns(ctx(t), "img"))
	if v, err := s.AssignRun(ctx(t), "run-1", "img", "v-after", T0); err != nil || v != "v-after" {
		t.Errorf("AssignRun after ForgetRuns = %q, %v; want the new version", v, err)
	}
	if v, err := s.AssignRun(ctx(t), "run-1", "other", "v-x", T0); err != nil || v != "v-other" {
		t.Errorf("ForgetRuns of img forgot another label's run: got %q, %v", v, err)
	}
}

func testServed(t *testing.T, s rollout.Store) {
	m0 := T0
	m1 := T0.Add(time.Minute)
	must(t, s.AddServed(ctx(t), []rollout.Served{
		{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m0.Add(10 * time.Second), Count: 3},
		{Label: "img", Version: "v0", Ring: 1, Reason: "default", Minute: m0, Count: 10},
		{Label: "other", Version: "v1", Ring: 0, Reason: "rollout", Minute: m0, Count: 99},
	}))
	must(t, s.AddServed(ctx(t), []rollout.Served{
		{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m0, Count: 2},
		{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m1.Add(59 * time.Second), Count: 4},
		{Label: "img", Version: "v0", Ring: 1, Reason: "pin", Minute: m1, Count: 1},
	}))
	must(t, s.AddServed(ctx(t), nil))
	for _, tc := range []struct {
		since time.Time
		want  []rollout.Served
	}{
		{m0.Add(30 * time.Second), []rollout.Served{ // the bucket holding since counts
			{Label: "img", Version: "v0", Ring: 1, Reason: "default", Minute: m0, Count: 10},
			{Label: "img", Version: "v0", Ring: 1, Reason: "pin", Minute: m1, Count: 1},
			{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m1, Count: 9},
		}},
		{m1, []rollout.Served{
			{Label: "img", Version: "v0", Ring: 1, Reason: "pin", Minute: m1, Count: 1},
			{Label: "img", Version: "v1", Ring: 0, Reason: "rollout", Minute: m1, Count: 4},
		}},
		{m1.Add(time.Minute), nil},
	} {
		got, err := s.ServedSince(ctx(t), "img", tc.since)
		must(t, err)
		if d := cmp.Diff(tc.want, got, equateEmpty); d != "" {
			t.Errorf("ServedSince(%v) (-want +got):\n%s", tc.since, d)
		}
	}
}

func testGeneration(t *testing.T, s rollout.Store) {
	var r rollout.Rollout
	steps := []struct {
		name  string
		bumps bool
		do    func() error
	}{
		{"put image", true, func() error { return s.PutImage(ctx(t), rollout.Image{Label: "img"}, Audit("a", "b")) }},
		{"put image again", false, func() error { return s.PutImage(ctx(t), rollout.Image{Label: "img"}, Audit("a", "b")) }},
		{"create version", true, func() error {
			return s.CreateVersion(ctx(t), rollout.Version{Label: "img", Version: "v1", Gate: rollout.GatePass}, Audit("a", "b"))
		}},
		{"create version v2", true, func() error {
			return s.CreateVersion(ctx(t), rollout.Version{Label: "img", Version: "v2", Gate: rollout.GatePass}, Audit("a", "b"))
		}},
		{"put rings", true, func() error {
			return s.PutRings(ctx(t), "", []rollout.Ring{{Name: "all", Percent: 100}}, Audit("a", "b"))
		}},
		{"create rollout", true, func() error {
			r = newRollout("img", "v2")
			return s.CreateRollout(ctx(t), &r, nil, Audit("a", "b"))
		}},
		{"update rollout", true, func() error { r.Ring = 1; return s.UpdateRollout(ctx(t), &r, Audit("a", "b")) }},
		{"put pin", true, func() error {
			return s.PutPin(ctx(t), rollout.Pin{Org: "o", Label: "img", Version: "v1", ExpiresAt: T0}, Audit("a", "b"))
		}},
		{"delete pin", true, func() error { return s.DeletePin(ctx(t), "o", "img", Audit("a", "b")) }},
		{"revoke", true, func() error { return s.RevokeVersion(ctx(t), "img", "v1", "cve", Audit("a", "b")) }},
		{"revoke again", false, func() error { return s.RevokeVersion(ctx(t), "img", "v1", "cve", Audit("a", "b")) }},
		{"forget runs", true, func() error { return s.ForgetRuns(ctx(t), "img") }},
		{"append events", false, func() error { _, err := s.AppendEvents(ctx(t), Events("j", "img", "v1", 3)); return err }},
		{"assign run", false, func() error { _, err := s.AssignRun(ctx(t), "run", "img", "v1", T0); return err }},
		{"add served", false, func() error {
			return s.AddServed(ctx(t), []rollout.Served{{Label: "img", Version: "v1", Minute: T0, Count: 1}})
		}},
		{"lease", false, func() error { _, _, err := s.AcquireLease(ctx(t), "controller", "a", time.Second, T0); return err }},
		{"token", false, func() error {
			return s.CreateToken(ctx(t), rollout.Token{ID: "t", Role: rollout.RoleAdmin, Hash: []byte("h")}, Audit("a", "b"))
		}},
		{"stale update", false, func() error {
			stale := r
			stale.Revision--
			if err := s.UpdateRollout(ctx(t), &stale, Audit("a", "b")); !errors.Is(err, rollout.ErrConflict) {
				return fmt.Errorf("stale update: %v, want ErrConflict", err)
			}
			return nil
		}},
	}
	g, err := s.Generation(ctx(t))
	must(t, err)
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		next, err := s.Generation(ctx(t))
		must(t, err)
		switch {
		case st.bumps && next <= g:
			t.Errorf("%s: generation %d -> %d, want an increase", st.name, g, next)
		case !st.bumps && next != g:
			t.Errorf("%s: generation %d -> %d, want unchanged", st.name, g, next)
		}
		g = next
	}
}

func testLease(t *testing.T, s rollout.Store) {
	const ttl = 10 * time.Second
	type step struct {
		holder    string
		at        time.Duration // after T0
		release   bool
		wantOK    bool
		wantFence int64
	}
	steps := []step{
		{holder: "a", at: 0, wantOK: true, wantFence: 1},
		{holder: "b", at: time.Second, wantOK: false, wantFence: 1},
		{holder: "a", at: 5 * time.Second, wantOK: true, wantFence: 1},   // renew: same fence
		{holder: "b", at: 14 * time.Second, wantOK: false, wantFence: 1}, // renewed until 15s
		{holder: "b", at: 15 * time.Second, wantOK: true, wantFence: 2},  // expired: changes hands
		{holder: "a", at: 16 * time.Second, wantOK: false, wantFence: 2}, // the old leader is out
		{holder: "a", at: 17 * time.Second, release: true},               // not a's to release
		{holder: "a", at: 18 * time.Second, wantOK: false, wantFence: 2}, // still b's
		{holder: "b", at: 19 * time.Second, release: true},               // b steps down
		{holder: "a", at: 19 * time.Second, wantOK: true, wantFence: 3},  // free at once
		{holder: "a", at: 100 * time.Second, wantOK: true, wantFence: 3}, // expired, nobody took it
		{holder: "c", at: 1000 * time.Second, wantOK: true, wantFence: 4},
	}
	for i, st := range steps {
		if st.release {
			must(t, s.ReleaseLease(ctx(t), "controller", st.holder))
			continue
		}
		ok, fence, err := s.AcquireLease(ctx(t), "controller", st.holder, ttl, T0.Add(st.at))
		must(t, err)
		if ok != st.wantOK || fence != st.wantFence {
			t.Errorf("step %d: %s at +%v: ok=%v fence=%d, want ok=%v fence=%d", i, st.holder, st.at, ok, fence, st.wantOK, st.wantFence)
		}
	}
	ok, fence, err := s.AcquireLease(ctx(t), "other", "a", ttl, T0)
	must(t, err)
	if !ok || fence != 1 {
		t.Errorf("an independent lease name: ok=%v fence=%d, want true 1", ok, fence)
	}
	must(t, s.ReleaseLease(ctx(t), "never-taken", "a"))
}

// testLeaseConcurrent: twenty candidates race for one lease, twice (a free
// lease, then an expired one): exactly one wins each time and the fence
// moves by one.
func testLeaseConcurrent(t *testing.T, s rollout.Store) {
	const n = 20
	race := func(at time.Time) (winners []string, fences []int64) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var errs []error
		for i := range n {
			wg.Go(func() {
				holder := fmt.Sprint("round", at.Unix(), "-", i)
				ok, fence, err := s.AcquireLease(context.Background(), "controller", holder, 10*time.Second, at)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if ok {
					winners = append(winners, holder)
				}
				fences = append(fences, fence)
			})
		}
		wg.Wait()
		must(t, errors.Join(errs...))
		return winners, fences
	}
	for round, at := range []time.Time{T0, T0.Add(time.Minute)} {
		winners, fences := race(at)
		if len(winners) != 1 {
			t.Fatalf("round %d: %d holders got the lease (%v), want exactly 1", round, len(winners), winners)
		}
		sort.Slice(fences, func(i, j int) bool { return fences[i] < fences[j] })
		if fences[0] != fences[len(fences)-1] || fences[0] != int64(round+1) {
			t.Errorf("round %d: fences seen %v, want all %d", round, fences, round+1)
		}
		ok, _, err := s.AcquireLease(ctx(t), "controller", winners[0], 10*time.Second, at.Add(time.Second))
		must(t, err)
		if !ok {
			t.Errorf("round %d: winner %s cannot renew", round, winners[0])
		}
	}
}

// testCursors: a cursor from another list or from a client that made it
// up is refused as invalid, never a crash or a silent restart.
func testCursors(t *testing.T, s rollout.Store) {
	for _, bad := range []string{"%%%", "not base64!", "AAAA"} {
		_, _, err := s.ListAudit(ctx(t), rollout.AuditFilter{}, rollout.Page{After: bad})
		wantErr(t, "ListAudit with cursor "+bad, err, rollout.ErrInvalid)
		_, _, err = s.ListPins(ctx(t), "", "", true, T0, rollout.Page{After: bad})
		wantErr(t, "ListPins with cursor "+bad, err, rollout.ErrInvalid)
		_, _, err = s.ListRollouts(ctx(t), "", nil, rollout.Page{After: bad})
		wantErr(t, "ListRollouts with cursor "+bad, err, rollout.ErrInvalid)
		_, _, err = s.ListVersions(ctx(t), "img", rollout.Page{After: bad})
		wantErr(t, "ListVersions with cursor "+bad, err, rollout.ErrInvalid)
	}
}
