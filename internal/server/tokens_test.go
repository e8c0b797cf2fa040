package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
)

// actorOf is how the audit log names the holder of secret.
func actorOf(secret, name, role string) string {
	return "token:" + name + " (tok-" + hex.EncodeToString(server.HashToken(secret)[:6]) + ", " + role + ")"
}

var adminActor = actorOf(adminSecret, "bootstrap-admin", rollout.RoleAdmin)

func wantAPIError(t *testing.T, what string, err error, status int) {
	t.Helper()
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != status {
		t.Fatalf("%s: %v, want HTTP %d", what, err, status)
	}
}

// TestTokenLifecycle, on both stores: list without secrets and with last
// use, expiry, revocation at once on the revoking replica and within the
// cache TTL on another, a second revocation that writes nothing, the last
// admin token kept, rotation of the bootstrap admin token.
func TestTokenLifecycle(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			h := newHostile(t, kind)
			admin, _ := apiclient.New(h.URL, adminSecret, nil)
			// A second replica over the same store, with its own token cache.
			srv2, err := server.New(server.Options{Service: h.svc, Store: h.st, Now: h.clock.Now, TokenCacheTTL: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			hs2 := httptest.NewServer(srv2)
			defer hs2.Close()

			runner, err := admin.NewToken(ctx, api.CreateTokenRequest{Name: "ci", Role: rollout.RoleRunner, ExpiresAt: h.clock.Now().Add(48 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			on1, _ := apiclient.New(h.URL, runner.Token, nil)
			on2, _ := apiclient.New(hs2.URL, runner.Token, nil)
			for _, c := range []*apiclient.Client{on1, on2} {
				if _, err := c.Resolve(ctx, "org-a", label, ""); err != nil {
					t.Fatalf("resolve with a fresh runner token: %v", err)
				}
			}
			_, err = admin.NewToken(ctx, api.CreateTokenRequest{Name: "old", Role: rollout.RoleRunner, ExpiresAt: h.clock.Now().Add(-time.Hour)})
			wantAPIError(t, "a token expiring in the past", err, 400)

			// The list shows last use and expiry, never a secret.
			status, body := h.do(t, "GET", "/api/v1/tokens", "")
			if status != 200 || strings.Contains(body, runner.Token) || strings.Contains(body, adminSecret) || strings.Contains(body, "igt_") {
				t.Fatalf("token list: %d %s", status, body)
			}
			list, err := admin.Tokens(ctx, rollout.Page{})
			if err != nil {
				t.Fatal(err)
			}
			var ci rollout.Token
			for _, tok := range list.Items {
				if tok.ID == runner.ID {
					ci = tok
				}
			}
			if ci.Name != "ci" || ci.Role != rollout.RoleRunner || !ci.LastUsedAt.Equal(h.clock.Now()) || !ci.ExpiresAt.Equal(h.clock.Now().Add(48*time.Hour)) {
				t.Errorf("listed %+v, want the ci runner token used now and expiring in 48h", ci)
			}

			// Revoked on replica 1: refused there at once, on replica 2
			// once its cache entry lapses.
			revoked, err := admin.RevokeToken(ctx, runner.ID, "leaked in a build log")
			if err != nil || revoked.RevokedAt.IsZero() {
				t.Fatalf("revoke: %+v, %v", revoked, err)
			}
			_, err = on1.Resolve(ctx, "org-a", label, "")
			wantAPIError(t, "resolve on the revoking replica", err, 401)
			if _, err := on2.Resolve(ctx, "org-a", label, ""); err != nil {
				t.Fatalf("replica 2 within its cache TTL: %v (the TTL is the documented bound)", err)
			}
			h.clock.Advance(31 * time.Second)
			_, err = on2.Resolve(ctx, "org-a", label, "")
			wantAPIError(t, "resolve on replica 2 after the TTL", err, 401)

			// A second revocation with another reason: 200, the first
			// revocation stands, nothing is written.
			again, err := admin.RevokeToken(ctx, runner.ID, "another reason")
			if err != nil || !again.RevokedAt.Equal(revoked.RevokedAt) {
				t.Fatalf("second revoke: %+v, %v; want the first revocation", again, err)
			}
			audit, err := admin.Audit(ctx, rollout.AuditFilter{SubjectPrefix: "token/" + runner.ID}, rollout.Page{})
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, a := range audit.Items {
				actions = append(actions, a.Action+" "+a.Reason)
			}
			if got := strings.Join(actions, "; "); got != "token.revoke leaked in a build log; token.create " {
				t.Errorf("audit of the token: %q", got)
			}

			// Expiry: a token stops at its expiresAt.
			short, err := admin.NewToken(ctx, api.CreateTokenRequest{Name: "short", Role: rollout.RoleRunner, ExpiresAt: h.clock.Now().Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			sc, _ := apiclient.New(h.URL, short.Token, nil)
			if _, err := sc.Resolve(ctx, "org-a", label, ""); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(time.Minute)
			_, err = sc.Resolve(ctx, "org-a", label, "")
			wantAPIError(t, "an expired token", err, 401)

			// The bootstrap admin token is the last admin: revoking it is
			// refused, rotating it works and the old secret is dead, also
			// as IMAGEGATE_ADMIN_TOKEN at the next start.
			bootID := "tok-" + hex.EncodeToString(server.HashToken(adminSecret)[:6])
			_, err = admin.RevokeToken(ctx, bootID, "")
			wantAPIError(t, "revoking the last admin token", err, 409)
			rot, err := admin.RotateToken(ctx, bootID, "yearly rotation")
			if err != nil || rot.Name != "bootstrap-admin" || rot.Role != rollout.RoleAdmin {
				t.Fatalf("rotate: %+v, %v", rot, err)
			}
			_, err = admin.Tokens(ctx, rollout.Page{})
			wantAPIError(t, "the rotated secret", err, 401)
			admin2, _ := apiclient.New(h.URL, rot.Token, nil)
			if _, err := admin2.Tokens(ctx, rollout.Page{}); err != nil {
				t.Fatalf("the new admin secret: %v", err)
			}
			var out bytes.Buffer
			err = server.BootstrapAdmin(ctx, h.st, adminSecret, &out, h.clock.Now())
			if err == nil || !strings.Contains(err.Error(), "revoked") {
				t.Errorf("BootstrapAdmin with the rotated secret: %v, want a refusal", err)
			}
			if err := server.BootstrapAdmin(ctx, h.st, rot.Token, io.Discard, h.clock.Now()); err != nil {
				t.Errorf("BootstrapAdmin with the new secret: %v", err)
			}
		})
	}
}

// TestAuditNamesTokenIDAndRole: two tokens of one name act; the audit log
// tells them apart by id and role.
func TestAuditNamesTokenIDAndRole(t *testing.T) {
	ctx := context.Background()
	h := newHostile(t, "sqlite")
	admin, _ := apiclient.New(h.URL, adminSecret, nil)
	var secrets []string
	for _, role := range []string{rollout.RoleAdmin, rollout.RoleRunner} {
		tok, err := admin.CreateToken(ctx, "dup", role)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, tok.Token)
	}
	dupAdmin, _ := apiclient.New(h.URL, secrets[0], nil)
	if _, err := dupAdmin.Act(ctx, h.rollout, "pause", "look closer"); err != nil {
		t.Fatal(err)
	}
	audit, err := admin.Audit(ctx, rollout.AuditFilter{Action: "rollout.pause"}, rollout.Page{})
	if err != nil || len(audit.Items) != 1 {
		t.Fatalf("audit: %+v, %v", audit, err)
	}
	if got, want := audit.Items[0].Actor, actorOf(secrets[0], "dup", rollout.RoleAdmin); got != want {
		t.Errorf("actor %q, want %q", got, want)
	}
	if actorOf(secrets[0], "dup", rollout.RoleAdmin) == actorOf(secrets[1], "dup", rollout.RoleRunner) {
		t.Error("two tokens named dup share an actor")
	}
}
