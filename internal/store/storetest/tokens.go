package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

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
