package rollout_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/rollout"
)

// TestInputGrammar pins the identifier, key and text rules and that each
// refusal names the field and the code point.
func TestInputGrammar(t *testing.T) {
	tests := []struct {
		name  string
		check func() error
		want  string // "" = accepted, else a substring of the refusal
	}{
		{"label", func() error { return rollout.CheckName("label", "ubuntu-22.04") }, ""},
		{"version with colon", func() error { return rollout.CheckName("version", "1:2.0_rc-1") }, ""},
		{"underscore first", func() error { return rollout.CheckName("label", "_x") }, ""},
		{"empty", func() error { return rollout.CheckName("label", "") }, "label is required"},
		{"dot", func() error { return rollout.CheckName("label", ".") }, "'.' (U+002E) at offset 0"},
		{"dot-dot", func() error { return rollout.CheckName("label", "..") }, "'.' (U+002E) at offset 0"},
		{"hyphen first", func() error { return rollout.CheckName("label", "-x") }, "'-'"},
		{"homoglyph", func() error { return rollout.CheckName("label", "ubuntu‐22.04") }, "U+2010 at offset 6"},
		{"zero width", func() error { return rollout.CheckName("label", "a\u200b") }, `label "a\u200b": character U+200B at offset 1`},
		{"slash", func() error { return rollout.CheckName("org", "a/b") }, "'/'"},
		{"space", func() error { return rollout.CheckName("org", "a b") }, "' ' (U+0020)"},
		{"invalid UTF-8", func() error { return rollout.CheckName("label", "x\xff") }, "byte 0xFF at offset 1 (not UTF-8)"},
		{"NUL", func() error { return rollout.CheckName("label", "a\x00") }, "U+0000 at offset 1"},
		{"too long", func() error { return rollout.CheckName("label", strings.Repeat("a", 129)) }, "at most 128"},
		{"longest", func() error { return rollout.CheckName("label", strings.Repeat("a", 128)) }, ""},
		{"pipeline", func() error { return rollout.CheckKey("pipeline", "o/r/.github/workflows/ci.yml@refs/heads/main", 512) }, ""},
		{"key space", func() error { return rollout.CheckKey("jobId", "a b", 256) }, "jobId"},
		{"key non-ASCII", func() error { return rollout.CheckKey("jobId", "é", 256) }, "U+00E9"},
		{"text newline tab", func() error { return rollout.CheckText("reason", "a\n\tb ü", 100) }, ""},
		{"text empty", func() error { return rollout.CheckText("reason", "", 100) }, ""},
		{"text CR", func() error { return rollout.CheckText("reason", "a\r\n", 100) }, "U+000D"},
		{"text ESC", func() error { return rollout.CheckText("errorText", "\x1b[31m", 100) }, "U+001B"},
		{"log ANSI and CR", func() error { return rollout.CheckLog("errorText", "\x1b[31mError:\x1b[0m boom\r\n100%\r", 100) }, ""},
		{"log NUL", func() error { return rollout.CheckLog("errorText", "a\x00b", 100) }, "U+0000 at offset 1"},
		{"log invalid UTF-8", func() error { return rollout.CheckLog("errorText", "a\xffb", 100) }, "byte 0xFF at offset 1"},
		{"log too long", func() error { return rollout.CheckLog("errorText", "abc", 2) }, "errorText has 3 bytes, at most 2"},
		{"text C1", func() error { return rollout.CheckText("reason", "\u0085", 100) }, "U+0085"},
		{"text too long", func() error { return rollout.CheckText("reason", "abc", 2) }, "reason has 3 bytes, at most 2"},
		{"line newline", func() error { return rollout.CheckLine("owner", "a\nb", 100) }, "U+000A"},
		{"role admin", func() error { return rollout.CheckRole("admin") }, ""},
		{"role org", func() error { return rollout.CheckRole("org:acme") }, ""},
		{"role org space", func() error { return rollout.CheckRole("org:a b") }, "' '"},
		{"role org path", func() error { return rollout.CheckRole("org:../x") }, "'.'"},
		{"role org empty", func() error { return rollout.CheckRole("org:") }, "required"},
		{"role root", func() error { return rollout.CheckRole("root") }, "want admin, runner or org:<id>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("accepted, want a refusal naming %q", tt.want)
			case err != nil && (!errors.Is(err, rollout.ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("%v: want ErrInvalid naming %q", err, tt.want)
			}
		})
	}
}

// FuzzCheckName: whatever passes is an identifier a URL path, a store
// and a shell take as is.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"ubuntu-22.04", "..", "a\x00", "x\xff", "a\u200b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !rollout.IsName(s) {
			return
		}
		if s == "." || s == ".." || len(s) > rollout.MaxName {
			t.Fatalf("accepted %q", s)
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.-:", c) >= 0) {
				t.Fatalf("accepted %q with byte %q", s, c)
			}
		}
	})
}
