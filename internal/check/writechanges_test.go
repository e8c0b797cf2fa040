package check_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// TestWriteChanges: the file declares every failure a changes file can
// (modules, tools, baseline changes, two installs of one series), parses,
// and makes the same check pass; nothing is declared when nothing fails.
func TestWriteChanges(t *testing.T) {
	broken := snapshot.Module{Name: "sqlite3", Status: snapshot.StatusImportError, Error: noSqlite}
	base := snap([]snapshot.Runtime{
		pythonRuntime(t, "3.11.7", "/opt/hostedtoolcache/Python/3.11.7/x64", "toolcache"),
		pythonRuntime(t, "3.11.2", "/usr", "os-package"),
	}, snapshot.Tool{Name: "git", Path: "/usr/bin/git", Version: "2.39.5", Status: "ok"}, snapshot.Tool{Name: "php", Path: "/usr/bin/php", Version: "8.2"})
	target := snap([]snapshot.Runtime{
		pythonRuntime(t, "3.11.8", "/opt/hostedtoolcache/Python/3.11.8/x64", "toolcache", broken),
		pythonRuntime(t, "3.11.2", "/usr", "os-package"),
	}, snapshot.Tool{Name: "git", Path: "/usr/bin/git", Status: "failed", Error: "exit status 127"})
	ctx := context.Background()
	r, err := check.Run(ctx, target, check.Options{Baseline: base})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Failed() {
		t.Fatal("the target should fail before anything is declared")
	}
	var buf bytes.Buffer
	n, err := r.WriteChanges(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`- break: "runtime/python@3.11[/opt/hostedtoolcache/Python/*/x64]/module/sqlite3"`,
		`- break: "tool/git"`,
		`- remove: "tool/php"`,
		`reason: "TODO: `,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("changes file lacks %q:\n%s", want, buf.String())
		}
	}
	if n != len(r.Failures()) {
		t.Errorf("wrote %d declarations for %d failures:\n%s", n, len(r.Failures()), buf.String())
	}
	again, err := check.Run(ctx, target, check.Options{Baseline: base, Changes: mustChanges(t, buf.String())})
	if err != nil {
		t.Fatal(err)
	}
	if again.Failed() {
		t.Errorf("with the written file the check still fails: %v\n%s", again.Failures(), buf.String())
	}

	buf.Reset()
	pass, err := check.Run(ctx, base, check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := pass.WriteChanges(&buf); err != nil || n != 0 {
		t.Fatalf("a passing check wrote %d declarations, %v", n, err)
	}
	if ch := mustChanges(t, buf.String()); len(ch.Declarations) != 0 {
		t.Errorf("a passing check's file declares %v", ch.Declarations)
	}
}
