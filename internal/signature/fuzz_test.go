package signature_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/imagegate/imagegate/internal/signature"
)

func FuzzExtract(f *testing.F) {
	for _, s := range []string{sqliteTraceback, pytestCollection, pytestFailed, npm404, npmLifecycle, mavenDeps, gradle, gradleCompile, goTest, javaCause, ansi,
		"", "\n", "\x1b[", "\x1b]0;title", "2026-12-01T10:00:00Z", "Traceback (most recent call last):", "* What went wrong:", "npm ERR!"} {
		f.Add(s, 64)
	}
	f.Fuzz(func(t *testing.T, text string, max int) {
		if tail := signature.Tail(text, max); len(tail) > max && max >= 0 || max <= 0 && tail != "" {
			t.Fatalf("Tail(%d) returned %d bytes", max, len(tail))
		} else if !strings.HasSuffix(text, tail) {
			t.Fatalf("Tail(%d) = %q is not a suffix", max, tail)
		} else if utf8.ValidString(text) && !utf8.ValidString(tail) {
			t.Fatalf("Tail(%d) cut a rune: %q", max, tail)
		}
		got := signature.Extract(text)
		if len(got) > signature.MaxMessage {
			t.Fatalf("Extract returned %d bytes", len(got))
		}
		if strings.ContainsAny(got, "\n\x1b") {
			t.Fatalf("Extract returned more than a clean line: %q", got)
		}
		if utf8.ValidString(text) && !utf8.ValidString(got) {
			t.Fatalf("Extract cut a rune: %q", got)
		}
	})
}

func FuzzMiner(f *testing.F) {
	for _, s := range generateCorpus(40, 3) {
		f.Add(s, "ModuleNotFoundError: No module named '_sqlite3'")
	}
	f.Add("<NUM> <*> '<QUOTED>' https://h:<NUM>/<URL>", "No module named <QUOTED>")
	f.Add("Cannot find module '/x' No module named 'a b'", "\x00'a' has no attribute")
	f.Fuzz(func(t *testing.T, a, b string) {
		masked := signature.Mask(a)
		if again := signature.Mask(masked); again != masked {
			t.Fatalf("Mask is not idempotent:\n%q\n%q\n%q", a, masked, again)
		}
		if strings.IndexByte(masked, 0) >= 0 || len(strings.Fields(masked)) > 64 {
			t.Fatalf("Mask(%q) = %q", a, masked)
		}
		m := signature.NewMiner(signature.Options{})
		ma := m.Add(a)
		mb := m.Add(b)
		for _, x := range []signature.Match{ma, mb} {
			if x.ID != signature.IDOf(x.Template) || len(x.ID) != 16 {
				t.Fatalf("id %q of template %q", x.ID, x.Template)
			}
		}
		got, ok := m.Match(a)
		if !ok {
			t.Fatalf("Match(%q) found nothing after Add", a)
		}
		if mb.Previous == "" && got.ID != ma.ID && got.ID != mb.ID {
			t.Fatalf("Match(%q) = %s, Add said %s", a, got.ID, ma.ID)
		}
		// A fresh miner seeded with the templates assigns the same ids.
		seeded := signature.NewMiner(signature.Options{})
		for _, tm := range m.Templates() {
			if s := seeded.Seed(tm.Template); s.ID != tm.ID {
				t.Fatalf("Seed(%q) = %s, want %s", tm.Template, s.ID, tm.ID)
			}
		}
	})
}
