// Package page holds the paging rules both stores share: page sizes and
// the opaque cursors clients pass back, so a cursor means the same on
// SQLite and PostgreSQL.
package page

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Page sizes: a zero or negative Limit means DefaultLimit; larger ones
// are cut to MaxLimit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Limit is p's page size after the DefaultLimit and MaxLimit rules.
func Limit(p rollout.Page) int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// Cursors are the last returned item's sort key, base64url-encoded so
// clients treat them as opaque. A key, not an offset, keeps pages stable
// when rows are inserted meanwhile.

// SeqCursor is the cursor after the item with sequence number seq.
func SeqCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10)))
}

// AfterSeq decodes a descending-order cursor; no cursor means "from the top".
func AfterSeq(after string) (int64, error) {
	if after == "" {
		return math.MaxInt64, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(after)
	if err != nil {
		return 0, fmt.Errorf("page cursor %q: %w: pass the cursor a previous page returned", after, rollout.ErrInvalid)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("page cursor %q: %w: pass the cursor a previous page returned", after, rollout.ErrInvalid)
	}
	return n, nil
}

// KeyCursor is the cursor after the item whose sort key is parts.
func KeyCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

// AfterKey decodes a cursor of n string parts; no cursor gives n empty
// strings, which sort before every key.
func AfterKey(after string, n int) ([]string, error) {
	if after == "" {
		return make([]string, n), nil
	}
	b, err := base64.RawURLEncoding.DecodeString(after)
	if err != nil {
		return nil, fmt.Errorf("page cursor %q: %w: pass the cursor a previous page returned", after, rollout.ErrInvalid)
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != n {
		return nil, fmt.Errorf("page cursor %q: %w: pass the cursor a previous page returned", after, rollout.ErrInvalid)
	}
	// Keys are identifiers: a part that is empty or not one line of UTF-8
	// never came from KeyCursor (and PostgreSQL would refuse it as text).
	for _, p := range parts {
		if p == "" || rollout.CheckLine("cursor", p, rollout.MaxLine) != nil {
			return nil, fmt.Errorf("page cursor %q: %w: pass the cursor a previous page returned", after, rollout.ErrInvalid)
		}
	}
	return parts, nil
}
