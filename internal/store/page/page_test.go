package page_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/page"
)

func TestLimit(t *testing.T) {
	for _, tt := range []struct{ in, want int }{
		{-1, page.DefaultLimit}, {0, page.DefaultLimit}, {1, 1}, {page.MaxLimit, page.MaxLimit}, {page.MaxLimit + 1, page.MaxLimit},
	} {
		if got := page.Limit(rollout.Page{Limit: tt.in}); got != tt.want {
			t.Errorf("Limit(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// The cursors below are what clients already hold: the format must not
// change, or their next page request fails.
func TestCursorFormat(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{page.SeqCursor(1), "MQ"},
		{page.SeqCursor(math.MaxInt64), "OTIyMzM3MjAzNjg1NDc3NTgwNw"},
		{page.KeyCursor("img"), "aW1n"},
		{page.KeyCursor("a", "b"), "YQBi"},
		{page.KeyCursor("", ""), "AA"},
	} {
		if tt.got != tt.want {
			t.Errorf("cursor %q, want %q", tt.got, tt.want)
		}
	}
}

func TestAfterSeq(t *testing.T) {
	for _, tt := range []struct {
		after   string
		want    int64
		invalid bool
	}{
		{after: "", want: math.MaxInt64},
		{after: "MQ", want: 1},
		{after: page.SeqCursor(0), want: 0},
		{after: "LTE", invalid: true},                        // -1
		{after: "OTIyMzM3MjAzNjg1NDc3NTgwOA", invalid: true}, // MaxInt64+1
		{after: "%%", invalid: true},
		{after: "YQBi", invalid: true}, // a key cursor
	} {
		got, err := page.AfterSeq(tt.after)
		switch {
		case tt.invalid && !errors.Is(err, rollout.ErrInvalid):
			t.Errorf("AfterSeq(%q) = %d, %v; want ErrInvalid", tt.after, got, err)
		case !tt.invalid && (err != nil || got != tt.want):
			t.Errorf("AfterSeq(%q) = %d, %v; want %d", tt.after, got, err, tt.want)
		}
	}
}

func TestAfterKey(t *testing.T) {
	for _, tt := range []struct {
		after   string
		n       int
		want    []string
		invalid bool
	}{
		{after: "", n: 2, want: []string{"", ""}},
		{after: "YQBi", n: 2, want: []string{"a", "b"}},
		{after: "aW1n", n: 1, want: []string{"img"}},
		{after: "YQBi", n: 1, invalid: true},
		{after: "aW1n", n: 2, invalid: true},
		{after: "%%", n: 1, invalid: true},
	} {
		got, err := page.AfterKey(tt.after, tt.n)
		if tt.invalid {
			if !errors.Is(err, rollout.ErrInvalid) {
				t.Errorf("AfterKey(%q, %d) = %q, %v; want ErrInvalid", tt.after, tt.n, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("AfterKey(%q, %d): %v", tt.after, tt.n, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("AfterKey(%q, %d) (-want +got):\n%s", tt.after, tt.n, diff)
		}
	}
}

// FuzzAfterSeq: a client-made cursor decodes to a non-negative sequence
// that survives a round trip, or is ErrInvalid.
func FuzzAfterSeq(f *testing.F) {
	for _, s := range []string{"", "MQ", "YQBi", "%%", "LTE", "OTIyMzM3MjAzNjg1NDc3NTgwOA", "MDE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, after string) {
		n, err := page.AfterSeq(after)
		if err != nil {
			if !errors.Is(err, rollout.ErrInvalid) {
				t.Fatalf("AfterSeq(%q): %v, want ErrInvalid", after, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("AfterSeq(%q) = %d, want >= 0", after, n)
		}
		// Leading zeros or "+" decode too; their canonical form must mean
		// the same position.
		if after != "" {
			if back, err := page.AfterSeq(page.SeqCursor(n)); err != nil || back != n {
				t.Fatalf("AfterSeq(SeqCursor(%d)) = %d, %v", n, back, err)
			}
		}
	})
}

// FuzzAfterKey: a client-made cursor decodes to exactly n parts that
// survive a round trip, or is ErrInvalid.
func FuzzAfterKey(f *testing.F) {
	for _, s := range []string{"", "MQ", "YQBi", "%%", "AA", "YQBiAGM"} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, after string, n int) {
		if n < 1 || n > 4 {
			return // the stores use 1 and 2 parts
		}
		parts, err := page.AfterKey(after, n)
		if err != nil {
			if !errors.Is(err, rollout.ErrInvalid) {
				t.Fatalf("AfterKey(%q, %d): %v, want ErrInvalid", after, n, err)
			}
			return
		}
		if len(parts) != n {
			t.Fatalf("AfterKey(%q, %d) = %d parts", after, n, len(parts))
		}
		// base64 accepts non-canonical spellings (newlines, stray low bits),
		// so compare positions, not cursor strings.
		if after != "" {
			back, err := page.AfterKey(page.KeyCursor(parts...), n)
			if err != nil || !slices.Equal(back, parts) {
				t.Fatalf("AfterKey(KeyCursor(%q...), %d) = %q, %v", parts, n, back, err)
			}
		}
		if slices.ContainsFunc(parts, func(p string) bool { return strings.Contains(p, "\x00") }) {
			t.Fatalf("AfterKey(%q, %d) = %q: a part holds the separator", after, n, parts)
		}
	})
}
