package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

// testSessions: create, read back exactly, a second create with the same
// secret conflicts, delete is idempotent, expired ones are pruned and the
// live one is kept.
func testSessions(t *testing.T, s rollout.Store) {
	live := rollout.Session{Hash: []byte("s1"), TokenHash: []byte("h1"), TokenID: "t1", CSRF: "c1", CreatedAt: T0, ExpiresAt: T0.Add(12 * time.Hour)}
	old := rollout.Session{Hash: []byte("s2"), TokenHash: []byte("h1"), TokenID: "t1", CSRF: "c2", CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}
	must(t, s.CreateSession(ctx(t), live))
	must(t, s.CreateSession(ctx(t), old))
	wantErr(t, "CreateSession with an existing secret", s.CreateSession(ctx(t), live), rollout.ErrConflict)
	wantErr(t, "CreateSession without a CSRF value",
		s.CreateSession(ctx(t), rollout.Session{Hash: []byte("s3"), TokenHash: []byte("h1"), ExpiresAt: T0}), rollout.ErrInvalid)
	got, err := s.SessionByHash(ctx(t), []byte("s1"))
	must(t, err)
	if d := cmp.Diff(live, got); d != "" {
		t.Errorf("SessionByHash (-want +got):\n%s", d)
	}
	n, err := s.DeleteExpiredSessions(ctx(t), T0.Add(time.Hour))
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteExpiredSessions at the expiry of one of two = %d, want 1", n)
	}
	_, err = s.SessionByHash(ctx(t), []byte("s2"))
	wantErr(t, "SessionByHash of a pruned session", err, rollout.ErrNotFound)
	must(t, s.DeleteSession(ctx(t), []byte("s1")))
	must(t, s.DeleteSession(ctx(t), []byte("s1")))
	_, err = s.SessionByHash(ctx(t), []byte("s1"))
	wantErr(t, "SessionByHash after logout", err, rollout.ErrNotFound)
	if n := len(allAudit(t, s)); n != 0 {
		t.Errorf("sessions wrote %d audit entries, want none", n)
	}
}
