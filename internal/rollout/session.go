package rollout

import (
	"context"
	"fmt"
	"time"
)

// Session is a dashboard login (package ui). The browser's cookie holds a
// random secret; only its SHA-256 (Hash) is stored, as for tokens, so a
// copy of the database opens no session.
type Session struct {
	Hash []byte `json:"-"`
	// TokenHash is the hash of the API token the session was opened with:
	// every request re-judges that token, so revoking or expiring it ends
	// the session too.
	TokenHash []byte `json:"-"`
	TokenID   string `json:"tokenId"`
	// CSRF is the value every form of the session carries; not a
	// credential on its own (it opens nothing without the cookie).
	CSRF      string    `json:"-"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// SessionStore holds dashboard sessions in the shared database, so that
// any replica serves a session and a logout ends it on all of them.
//
// Contract: sessions are not control-plane state: no audit entry, no
// Generation bump. Safe for concurrent use.
type SessionStore interface {
	// CreateSession stores s; ErrConflict when a session with its Hash
	// exists; ErrInvalid without Hash, TokenHash, CSRF or ExpiresAt.
	CreateSession(ctx context.Context, s Session) error
	// SessionByHash returns the session as stored, expired or not (the
	// caller refuses an expired one); ErrNotFound for an unknown hash.
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	// DeleteSession removes the session; idempotent (an unknown hash is
	// no error).
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteExpiredSessions removes the sessions whose ExpiresAt is at or
	// before now and returns how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}

// PrepareSession checks s before a store writes it, stamps CreatedAt when
// zero and normalises its times to UTC microseconds, which both stores
// keep exactly.
func PrepareSession(s Session) (Session, error) {
	switch {
	case len(s.Hash) == 0, len(s.TokenHash) == 0, s.CSRF == "", s.ExpiresAt.IsZero():
		return s, fmt.Errorf("create session: hash, token hash, CSRF value and expiry are required: %w", ErrInvalid)
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = time.Now()
	}
	s.CreatedAt = s.CreatedAt.UTC().Truncate(time.Microsecond)
	s.ExpiresAt = s.ExpiresAt.UTC().Truncate(time.Microsecond)
	return s, nil
}
