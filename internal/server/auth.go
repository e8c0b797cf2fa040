package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// TokenStore is the part of rollout.Store that authentication needs.
type TokenStore interface {
	CreateToken(ctx context.Context, t rollout.Token, audit rollout.AuditEntry) error
	// TokenByHash returns rollout.ErrNotFound for an unknown hash.
	TokenByHash(ctx context.Context, hash []byte) (rollout.Token, error)
	CountTokens(ctx context.Context, role string) (int, error)
	ListTokens(ctx context.Context, p rollout.Page) ([]rollout.Token, string, error)
	// RevokeToken is idempotent: changed is false for a revoked token.
	RevokeToken(ctx context.Context, id string, at time.Time, audit rollout.AuditEntry) (t rollout.Token, changed bool, err error)
	TouchToken(ctx context.Context, id string, at time.Time) error
}

// Principal is the authenticated caller of a request.
type Principal struct {
	TokenID string
	Name    string
	Role    string
	// Org is the organisation of an org:<id> token, "" otherwise.
	Org string
}

// Actor is how the audit log names the caller: the token's name, which
// people chose and need not be unique, with its id and role, which are.
func (p Principal) Actor() string { return "token:" + p.Name + " (" + p.TokenID + ", " + p.Role + ")" }

// Owner is how a pin names its owner by default: the token's name.
func (p Principal) Owner() string { return "token:" + p.Name }

func (p Principal) isAdmin() bool  { return p.Role == rollout.RoleAdmin }
func (p Principal) isRunner() bool { return p.Role == rollout.RoleRunner }

// mayActFor reports whether the caller may read or change org's own
// settings (pins) or resolve on its behalf.
func (p Principal) mayActFor(org string) error {
	if p.isAdmin() || (p.Org != "" && p.Org == org) {
		return nil
	}
	if p.Org != "" {
		return fmt.Errorf("token %q belongs to organisation %q and cannot act for %q: %w", p.Name, p.Org, org, rollout.ErrForbidden)
	}
	return fmt.Errorf("role %q cannot act for organisation %q: %w", p.Role, org, rollout.ErrForbidden)
}

func principalOf(t rollout.Token) Principal {
	p := Principal{TokenID: t.ID, Name: t.Name, Role: t.Role}
	if org, ok := strings.CutPrefix(t.Role, rollout.RoleOrgPrefix); ok {
		p.Org = org
	}
	return p
}

// HashToken is the stored form of a token: its SHA-256.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// NewToken returns a fresh random token; only its hash is ever stored.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return "igt_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ValidRole reports whether role is one a token may have.
func ValidRole(role string) bool { return rollout.CheckRole(role) == nil }

// CreateToken stores a new token with the given role and returns it in
// clear, the only time it is ever visible.
func CreateToken(ctx context.Context, st TokenStore, actor, name, role string, now time.Time) (string, rollout.Token, error) {
	return createToken(ctx, st, actor, rollout.Token{Name: name, Role: role}, "", now)
}

// createToken stores a new token named and roled as t, expiring at
// t.ExpiresAt when set.
func createToken(ctx context.Context, st TokenStore, actor string, t rollout.Token, reason string, now time.Time) (string, rollout.Token, error) {
	name, role := t.Name, t.Role
	if err := rollout.CheckRole(role); err != nil {
		return "", rollout.Token{}, fmt.Errorf("create token: %w", err)
	}
	if err := rollout.CheckName("token name", name); err != nil {
		return "", rollout.Token{}, fmt.Errorf("create token: %w", err)
	}
	if !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now) {
		return "", rollout.Token{}, fmt.Errorf("create token: expiry %s is not in the future: %w", t.ExpiresAt.UTC().Format(time.RFC3339), rollout.ErrInvalid)
	}
	secret, err := NewToken()
	if err != nil {
		return "", rollout.Token{}, err
	}
	t = rollout.Token{Name: name, Role: role, Hash: HashToken(secret), CreatedAt: now.UTC(), ExpiresAt: t.ExpiresAt}
	if !t.ExpiresAt.IsZero() {
		t.ExpiresAt = t.ExpiresAt.UTC().Truncate(time.Microsecond)
	}
	t.ID = "tok-" + hex.EncodeToString(t.Hash[:6])
	details := map[string]any{"name": name, "role": role}
	if !t.ExpiresAt.IsZero() {
		details["expiresAt"] = t.ExpiresAt
	}
	db, _ := json.Marshal(details)
	audit := rollout.AuditEntry{Actor: actor, Action: "token.create", Subject: "token/" + t.ID, Reason: reason, Details: db}
	if err := st.CreateToken(ctx, t, audit); err != nil {
		return "", rollout.Token{}, fmt.Errorf("create token %q: %w", name, err)
	}
	return secret, t, nil
}

// BootstrapAdmin makes sure the service can be administered. A token given
// in envToken (IMAGEGATE_ADMIN_TOKEN) is registered as an admin token if it
// is not yet known. Without one, when no admin token exists at all, a token
// is generated and written once to w: it is never shown again.
func BootstrapAdmin(ctx context.Context, st TokenStore, envToken string, w io.Writer, now time.Time) error {
	if envToken != "" {
		hash := HashToken(envToken)
		if t, err := st.TokenByHash(ctx, hash); err == nil {
			if !t.RevokedAt.IsZero() {
				// A revoked secret is a leaked or rotated one: registering
				// it again would undo the revocation.
				return fmt.Errorf("IMAGEGATE_ADMIN_TOKEN is token %s, revoked at %s: set it to the token that replaced it (imagegate token rotate prints one) or unset it", t.ID, t.RevokedAt.UTC().Format(time.RFC3339))
			}
			return nil
		} else if !errors.Is(err, rollout.ErrNotFound) {
			return fmt.Errorf("look up IMAGEGATE_ADMIN_TOKEN: %w", err)
		}
		// Replicas starting together derive the same ID, so the second
		// insert conflicts instead of adding a duplicate.
		t := rollout.Token{ID: "tok-" + hex.EncodeToString(hash[:6]), Name: "bootstrap-admin", Role: rollout.RoleAdmin, Hash: hash, CreatedAt: now.UTC()}
		err := st.CreateToken(ctx, t, rollout.AuditEntry{Actor: "system", Action: "token.create", Subject: "token/" + t.ID, Reason: "IMAGEGATE_ADMIN_TOKEN at start"})
		if err != nil && !errors.Is(err, rollout.ErrConflict) {
			return fmt.Errorf("register IMAGEGATE_ADMIN_TOKEN: %w", err)
		}
		return nil
	}
	n, err := st.CountTokens(ctx, rollout.RoleAdmin)
	if err != nil {
		return fmt.Errorf("count admin tokens: %w", err)
	}
	if n > 0 {
		return nil
	}
	secret, _, err := CreateToken(ctx, st, "system", "bootstrap-admin", rollout.RoleAdmin, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "imagegate: created the first admin token (shown only this once; keep it safe):\n%s\n", secret)
	return nil
}

// tokenCache remembers token lookups for a short time, so the resolve hot
// path costs a hash and a map lookup instead of a store round trip. A
// revoked token therefore keeps working for at most the TTL.
type tokenCache struct {
	st  TokenStore
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	mu sync.RWMutex
	m  map[[sha256.Size]byte]cachedToken
}

type cachedToken struct {
	p       Principal
	unknown bool
	expires time.Time // of the cache entry
	// token is what the store said; refused when not Usable at the time
	// of each request.
	token rollout.Token
}

// maxCachedTokens bounds memory when callers present many bogus tokens.
const maxCachedTokens = 10000

func newTokenCache(st TokenStore, ttl time.Duration, now func() time.Time) *tokenCache {
	return &tokenCache{st: st, ttl: ttl, now: now, m: make(map[[sha256.Size]byte]cachedToken)}
}

// authenticate returns the principal of an Authorization header value.
func (c *tokenCache) authenticate(ctx context.Context, header string) (Principal, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		if header == "" {
			return Principal{}, fmt.Errorf("missing Authorization: Bearer <token> header (set IMAGEGATE_TOKEN): %w", api.ErrUnauthenticated)
		}
		return Principal{}, fmt.Errorf("authorization header is not \"Bearer <token>\": %w", api.ErrUnauthenticated)
	}
	return c.authenticateKey(ctx, sha256.Sum256([]byte(token)))
}

// authenticateKey returns the principal of the token whose hash is key.
func (c *tokenCache) authenticateKey(ctx context.Context, key [sha256.Size]byte) (Principal, error) {
	now := c.now()
	c.mu.RLock()
	e, hit := c.m[key]
	c.mu.RUnlock()
	if !hit || now.After(e.expires) {
		t, err := c.st.TokenByHash(ctx, key[:])
		switch {
		case errors.Is(err, rollout.ErrNotFound):
			// Unknown tokens are cached briefly too, so a misconfigured
			// runner fleet cannot turn every request into a store query.
			e = cachedToken{unknown: true, expires: now.Add(min(c.ttl, 5*time.Second))}
		case err != nil && c.staleAllowed(hit, e, err, now):
			// Served from the expired entry, which stays expired: the
			// next request asks the store again.
		case err != nil:
			return Principal{}, fmt.Errorf("look up token: %w", err)
		default:
			e = cachedToken{p: principalOf(t), expires: now.Add(c.ttl), token: t}
			if t.Usable(now) == "" {
				// Last use is as fresh as the cache: one write per token
				// and replica per TTL, never on the hot path's hits.
				if err := c.st.TouchToken(ctx, t.ID, now); err != nil && c.log != nil {
					c.log.Warn("record token use", "token", t.ID, "err", err)
				}
			}
		}
		if err == nil || errors.Is(err, rollout.ErrNotFound) {
			c.mu.Lock()
			if len(c.m) >= maxCachedTokens {
				clear(c.m)
			}
			c.m[key] = e
			c.mu.Unlock()
		}
	}
	if e.unknown {
		return Principal{}, fmt.Errorf("unknown token: %w", api.ErrUnauthenticated)
	}
	if why := e.token.Usable(now); why != "" {
		return Principal{}, fmt.Errorf("token %s (%s) was %s: ask an admin for a new one: %w", e.p.TokenID, e.p.Name, why, api.ErrUnauthenticated)
	}
	return e.p, nil
}

// staleIfUnavailable is how long after its entry expired a known token
// is still accepted while the store fails as a dependency (PostgreSQL
// down): resolve answers from memory, and an outage of the database must
// not turn that into 503s for every runner once the cache TTL passes. A
// token revoked just before the outage works that much longer on the
// replicas that had it cached; no one can revoke during it.
const staleIfUnavailable = 5 * time.Minute

// staleAllowed reports whether the expired entry e (hit: there is one)
// may stand in for a lookup that failed with err.
func (c *tokenCache) staleAllowed(hit bool, e cachedToken, err error, now time.Time) bool {
	if !hit || e.unknown || now.Sub(e.expires) > staleIfUnavailable {
		return false
	}
	fc, ok := c.st.(FailureClassifier)
	if !ok {
		return false
	}
	_, ok = fc.Unavailable(err)
	return ok
}

// forget drops the cached lookups of token id, so a revocation holds on
// this replica from the next request on (others: within the TTL).
func (c *tokenCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.p.TokenID == id {
			delete(c.m, k)
		}
	}
}
