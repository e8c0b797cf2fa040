package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

func testTokens(t *testing.T, s rollout.Store) {
	tokens := []rollout.Token{
		{ID: "t1", Name: "bootstrap", Role: rollout.RoleAdmin, Hash: []byte("h1"), CreatedAt: T0},
		{ID: "t2", Name: "runners", Role: rollout.RoleRunner, Hash: []byte("h2"), CreatedAt: T0},
		{ID: "t3", Name: "org a", Role: rollout.RoleOrgPrefix + "org-a", Hash: []byte("h3"), CreatedAt: T0, ExpiresAt: T0.Add(24 * time.Hour)},
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
	testTokenLifecycle(t, s)
}

// testTokenLifecycle: list without hashes, last use only forward, revoke
// once (a second revoke keeps the first time and writes nothing), a
// revoked token is still found by its hash (the caller refuses it) and no
// longer counted.
func testTokenLifecycle(t *testing.T, s rollout.Store) {
	must(t, s.TouchToken(ctx(t), "t2", T0.Add(time.Hour)))
	must(t, s.TouchToken(ctx(t), "t2", T0.Add(time.Minute))) // older: ignored
	must(t, s.TouchToken(ctx(t), "nope", T0))
	var listed []rollout.Token
	p := rollout.Page{Limit: 2}
	for {
		items, next, err := s.ListTokens(ctx(t), p)
		must(t, err)
		listed = append(listed, items...)
		if next == "" {
			break
		}
		p.After = next
	}
	want := []rollout.Token{
		{ID: "t1", Name: "bootstrap", Role: rollout.RoleAdmin, CreatedAt: T0},
		{ID: "t2", Name: "runners", Role: rollout.RoleRunner, CreatedAt: T0, LastUsedAt: T0.Add(time.Hour)},
		{ID: "t3", Name: "org a", Role: rollout.RoleOrgPrefix + "org-a", CreatedAt: T0, ExpiresAt: T0.Add(24 * time.Hour)},
	}
	if d := cmp.Diff(want, listed); d != "" {
		t.Errorf("ListTokens (-want +got):\n%s", d)
	}
	before := len(allAudit(t, s))
	got, changed, err := s.RevokeToken(ctx(t), "t2", T0.Add(2*time.Hour), Audit("token.revoke", "token/t2"))
	must(t, err)
	if !changed || !got.RevokedAt.Equal(T0.Add(2*time.Hour)) {
		t.Errorf("RevokeToken = %+v, changed %v; want revoked at T0+2h", got, changed)
	}
	got, changed, err = s.RevokeToken(ctx(t), "t2", T0.Add(3*time.Hour), Audit("token.revoke", "token/t2"))
	must(t, err)
	if changed || !got.RevokedAt.Equal(T0.Add(2*time.Hour)) {
		t.Errorf("second RevokeToken = %+v, changed %v; want the first revocation kept", got, changed)
	}
	if n := len(allAudit(t, s)); n != before+1 {
		t.Errorf("audit grew by %d over two revocations of one token, want 1", n-before)
	}
	_, _, err = s.RevokeToken(ctx(t), "nope", T0, Audit("token.revoke", "token/nope"))
	wantErr(t, "RevokeToken of an unknown id", err, rollout.ErrNotFound)
	tok, err := s.TokenByHash(ctx(t), []byte("h2"))
	must(t, err)
	if tok.Usable(T0) == "" {
		t.Errorf("revoked token %+v is usable", tok)
	}
	if n, err := s.CountTokens(ctx(t), rollout.RoleRunner); err != nil || n != 0 {
		t.Errorf("CountTokens(runner) after revoking the only runner token = %d, %v; want 0", n, err)
	}
}
