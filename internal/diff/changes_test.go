package diff_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/diff"
)

func TestParseChanges(t *testing.T) {
	in := `# intended changes for the March image
changes:
  - remove: tool/php*
  - downgrade: package/deb/libssl*
  - break: runtime/python@2.7/module/*
    reason: Python 2.7 is leaving the image
  - remove: [tool/composer, tool/phpunit]
    reason: PHP goes too
`
	ch, err := diff.ParseChanges("changes.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []diff.Declaration{
		{Action: "remove", Pattern: "tool/php*", File: "changes.yaml", Line: 3},
		{Action: "downgrade", Pattern: "package/deb/libssl*", File: "changes.yaml", Line: 4},
		{Action: "break", Pattern: "runtime/python@2.7/module/*", Reason: "Python 2.7 is leaving the image", File: "changes.yaml", Line: 5},
		{Action: "remove", Pattern: "tool/composer", Reason: "PHP goes too", File: "changes.yaml", Line: 7},
		{Action: "remove", Pattern: "tool/phpunit", Reason: "PHP goes too", File: "changes.yaml", Line: 7},
	}
	if d := cmp.Diff(want, ch.Declarations); d != "" {
		t.Errorf("declarations (-want +got):\n%s", d)
	}
	for _, empty := range []string{"", "# nothing yet\n", "changes:\n", "changes: []\n"} {
		ch, err := diff.ParseChanges("c.yaml", []byte(empty))
		if err != nil || len(ch.Declarations) != 0 {
			t.Errorf("ParseChanges(%q) = %v, %v; want no declarations", empty, ch, err)
		}
	}
}

func TestParseChangesErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"changes:\n  - remove: tool/php\n  - delete: tool/x\n", `changes.yaml:3: unknown action "delete"; use one of add, remove, upgrade, downgrade, break, fix`},
		{"change:\n  - remove: tool/php\n", `changes.yaml:1: unknown key "change"; the file holds one "changes:" list`},
		{"changes:\n  remove: tool/php\n", `changes.yaml:2: "changes" must be a list of items such as "- remove: tool/php*"`},
		{"changes:\n  - tool/php\n", `changes.yaml:2: each change is a mapping such as "- remove: tool/php*"`},
		{"changes:\n  - reason: why\n", `changes.yaml:2: no action; use one of add, remove, upgrade, downgrade, break, fix`},
		{"changes:\n  - remove: tool/php\n    break: tool/php\n", `changes.yaml:3: one action per item: "remove" and "break"; split them into two items`},
		{"changes:\n  - remove: tools/php\n", `changes.yaml:2: remove "tools/php": IDs start with os/, package/, runtime/ or tool/`},
		{"changes:\n  - remove: {a: b}\n", `changes.yaml:2: remove: expected a pattern such as tool/php* or a list of them`},
		{"changes:\n  - remove: []\n", `changes.yaml:2: remove: no pattern`},
		{"changes:\n  - remove: [[x]]\n", `changes.yaml:2: remove: each pattern is a string such as tool/php*`},
		{"changes:\n  - remove: tool/a\n    reason: [x]\n", `changes.yaml:3: reason must be text`},
		{"changes:\n  - remove: tool/a\n   - x\n", `did not find expected '-' indicator`},
		{"- remove: tool/a\n", `changes.yaml:1: expected a mapping with a "changes:" list`},
		{"changes: [\n", `changes.yaml:`},
	}
	for _, tt := range tests {
		_, err := diff.ParseChanges("changes.yaml", []byte(tt.in))
		if err == nil {
			t.Errorf("ParseChanges(%q) succeeded, want error %q", tt.in, tt.want)
			continue
		}
		if !errors.Is(err, diff.ErrChanges) {
			t.Errorf("ParseChanges(%q) error %v does not wrap ErrChanges", tt.in, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseChanges(%q) error\n  %v\nwant it to contain\n  %s", tt.in, err, tt.want)
		}
	}
}

func TestReadChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "changes.yaml")
	if err := os.WriteFile(path, []byte("changes:\n  - fix: tool/git\n  - oops: tool/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := diff.ReadChanges(path)
	if want := path + `:3: unknown action "oops"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ReadChanges = %v, want an error containing %q", err, want)
	}
	if _, err := diff.ReadChanges(path + ".absent"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadChanges of a missing file = %v, want ErrNotExist", err)
	}
}

func FuzzParseChanges(f *testing.F) {
	f.Add([]byte("changes:\n  - remove: tool/php*\n  - break: runtime/python@2.7/module/*\n    reason: x\n"))
	f.Add([]byte("changes:\n  - remove: [tool/a, tool/b]\n"))
	f.Add([]byte("changes: [\n"))
	f.Add([]byte("{changes: [{fix: '**'}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := diff.ParseChanges("f.yaml", data)
		if err != nil {
			if !errors.Is(err, diff.ErrChanges) || !strings.Contains(err.Error(), "f.yaml") {
				t.Fatalf("error %q does not wrap ErrChanges or name the file", err)
			}
			return
		}
		for _, d := range ch.Declarations {
			if d.Pattern == "" || d.Line < 1 || d.File != "f.yaml" {
				t.Fatalf("declaration without pattern or position: %+v", d)
			}
			d.Covers(diff.ClassRemoved, "runtime/python@3.7/module/sqlite3") // must not panic
		}
	})
}
