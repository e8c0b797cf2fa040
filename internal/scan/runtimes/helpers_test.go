package runtimes_test

import (
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/source"
)

// visitor is the part of scan.Finder the walk drives.
type visitor interface {
	Visit(dir string, entries []os.DirEntry) bool
}

// mustWalk visits the directories under start (in-image) as the scan's walk
// does: depth-limited, never following links, skipping .git, honouring
// prune. Unlike the scan's walk it enters node_modules, so that the finder's
// own pruning is tested.
func mustWalk(tb testing.TB, t *source.Tree, f visitor, start string) {
	tb.Helper()
	const maxDepth = 9
	var visit func(dir string, depth int)
	visit = func(dir string, depth int) {
		entries, err := os.ReadDir(filepath.Join(t.Dir, dir))
		if err != nil {
			if !errors.Is(err, os.ErrPermission) {
				tb.Fatalf("walk: %v", err)
			}
			return
		}
		if f.Visit(dir, entries) || depth >= maxDepth {
			return
		}
		for _, e := range entries {
			if e.IsDir() && e.Name() != ".git" {
				visit(path.Join(dir, e.Name()), depth+1)
			}
		}
	}
	visit(start, strings.Count(strings.TrimSuffix(start, "/"), "/"))
}

// tree is a file tree a test writes under a temporary root: a value ending
// in "@link" is a link target, "@hardlink" a file of this machine linked in,
// "/" a directory; anything else a file's content, executable when it
// starts with "#!".
type tree map[string]string

func mustWriteTree(tb testing.TB, root string, files tree) {
	tb.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if target, ok := strings.CutSuffix(content, "@link"); ok {
			if err := os.Symlink(target, p); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		if src, ok := strings.CutSuffix(content, "@hardlink"); ok {
			// A hard link gives a real, runnable binary without
			// copying 100 MB; /tmp and /usr share a filesystem here.
			if err := os.Link(src, p); err != nil {
				tb.Fatalf("link %s into the fixture: %v", src, err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			tb.Fatal(err)
		}
	}
}

// mustRun returns the combined output of a program of this machine.
func mustRun(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
