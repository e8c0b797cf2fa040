// Package storetest is the one test suite every rollout.Store passes.
// A store's package runs it against a real database:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) rollout.Store { return openFresh(t) })
//	}
//
// open must return an empty, migrated store that the test owns (a temp
// file, a fresh schema) and close it in t.Cleanup.
//
// The tests of each role interface are in the file of its noun
// (versions.go for VersionStore, ...); this file holds Run, the helpers,
// and the tests that cross roles (Generation, Cursors).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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
		{"Sessions", testSessions},
		{"Events", testEvents},
		{"EventsConcurrentRetries", testEventsConcurrent},
		{"CountJobsMinutes", testCountJobsMinutes},
		{"AssignRun", testAssignRun},
		{"AssignRunRetention", testAssignRunRetention},
		{"AssignRunCrowd", testAssignRunCrowd},
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
