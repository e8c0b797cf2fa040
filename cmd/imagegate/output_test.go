package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestWriteOutput: --out replaces a file atomically, keeps a link and
// replaces what it points to, writes into a FIFO in place (as it would
// into /dev/null, which a rename would turn into a regular file), and
// refuses a directory.
func TestWriteOutput(t *testing.T) {
	report := func(w io.Writer) error { _, err := io.WriteString(w, "report\n"); return err }
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir string) (out string, check func(t *testing.T))
		wantErr string
	}{
		{"file", func(t *testing.T, dir string) (string, func(*testing.T)) {
			out := filepath.Join(dir, "r.json")
			must(t, os.WriteFile(out, []byte("old, longer than the report\n"), 0o644))
			return out, func(t *testing.T) { wantContent(t, out, "report\n") }
		}, ""},
		{"link", func(t *testing.T, dir string) (string, func(*testing.T)) {
			target := filepath.Join(dir, "target.json")
			must(t, os.WriteFile(target, []byte("old\n"), 0o644))
			link := filepath.Join(dir, "latest.json")
			must(t, os.Symlink("target.json", link))
			return link, func(t *testing.T) {
				if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("the link was replaced: %v %v", fi, err)
				}
				wantContent(t, target, "report\n")
			}
		}, ""},
		{"fifo", func(t *testing.T, dir string) (string, func(*testing.T)) {
			fifo := filepath.Join(dir, "pipe")
			must(t, syscall.Mkfifo(fifo, 0o644))
			got := make(chan string, 1)
			go func() {
				b, _ := os.ReadFile(fifo)
				got <- string(b)
			}()
			return fifo, func(t *testing.T) {
				if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
					t.Fatalf("the FIFO was replaced: %v %v", fi, err)
				}
				if s := <-got; s != "report\n" {
					t.Errorf("the reader of the FIFO got %q", s)
				}
			}
		}, ""},
		{"directory", func(t *testing.T, dir string) (string, func(*testing.T)) {
			return dir, func(*testing.T) {}
		}, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out, check := tc.setup(t, dir)
			err := writeOutput(io.Discard, out, report)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("writeOutput(%s) = %v, want an error containing %q", out, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check(t)
			if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func wantContent(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s = %q, want %q", path, b, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
