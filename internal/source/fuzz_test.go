package source_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/source"
)

// fuzzLimits keep a fuzzed layer from filling the disk.
var fuzzLimits = source.Options{MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20, MaxEntries: 2000}

// extractContained applies layers onto base/root with a sentinel directory
// beside it, and fails if anything outside the root changed or an error is
// not a single line.
func extractContained(t *testing.T, layers ...[]byte) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	sentinel := filepath.Join(base, "sentinel")
	for _, d := range []string{root, sentinel} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sentinel, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	x, err := source.NewExtractor(root, fuzzLimits)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if err := x.ApplyLayer(context.Background(), bytes.NewReader(l)); err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			break
		}
	}
	if err := x.Finish(); err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	x.Close()
	for _, e := range entries(t, base) {
		if e != "root" && e != "sentinel" && e != "sentinel/secret" && !strings.HasPrefix(e, "root/") {
			t.Fatalf("wrote outside the root: %s", e)
		}
	}
	if b, err := os.ReadFile(filepath.Join(sentinel, "secret")); err != nil || string(b) != "secret" {
		t.Fatalf("sentinel changed: %q, %v", b, err)
	}
	// Make the tree removable for t.TempDir when not root.
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}

// FuzzApplyLayer feeds arbitrary bytes as a layer, applied twice so that
// links made by the first pass are there to be written through by the
// second: it must never panic nor touch anything outside the root.
func FuzzApplyLayer(f *testing.F) {
	for _, seed := range [][]ent{
		{dir("a/"), file("a/f", "x"), symlink("a/l", "/etc"), hardlink("a/h", "a/f")},
		{file("../sentinel/pwned", "x")},
		{symlink("evil", "../sentinel"), file("evil/pwned", "x")},
		{symlink("evil", "/../sentinel"), file("evil/.wh.secret", "")},
		{symlink("d", "../sentinel"), file("d/.wh..wh..opq", "")},
		{hardlink("h", "../sentinel/secret")},
		{symlink("l", "../sentinel/secret"), hardlink("h", "l")},
		{dir("o/"), file("o/x", "1"), file("o/.wh..wh..opq", ""), file(".wh.o", "")},
		{ent{name: "dev/null", typ: tar.TypeChar}, ent{name: "p", typ: tar.TypeFifo}},
		{symlink("x", "y"), symlink("y", "x"), file("x/f", "")},
		{ent{name: "setuid", typ: tar.TypeReg, mode: 0o4755, body: "s"}, ent{name: "ro/", typ: tar.TypeDir, mode: 0o500}, file("ro/f", "")},
	} {
		f.Add(mustTar(f, seed...))
	}
	f.Fuzz(func(t *testing.T, layer []byte) {
		extractContained(t, layer, layer)
	})
}

// FuzzEntryPaths builds two-layer images from fuzzed names and link
// targets, which reaches the path resolution far more often than raw tar
// bytes do.
func FuzzEntryPaths(f *testing.F) {
	f.Add("evil", byte(2), "../sentinel", "evil/pwned", byte(0), "")
	f.Add("a/b", byte(2), "/../../sentinel", "a/b/c/.wh.secret", byte(0), "")
	f.Add("l", byte(2), "../sentinel/secret", "h", byte(1), "l")
	f.Add("d/", byte(5), "", "d/.wh..wh..opq", byte(0), "")
	f.Add("x", byte(0), "", "/x/../../sentinel/y", byte(1), "x")
	types := []byte{tar.TypeReg, tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeFifo, tar.TypeDir}
	f.Fuzz(func(t *testing.T, n1 string, t1 byte, l1, n2 string, t2 byte, l2 string) {
		mk := func(name string, typ byte, link string) []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			h := &tar.Header{Name: name, Typeflag: types[int(typ)%len(types)], Linkname: link, Mode: 0o755, Format: tar.FormatPAX}
			if h.Typeflag == tar.TypeReg {
				h.Size = 1
			}
			if tw.WriteHeader(h) != nil {
				return nil
			}
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte("x"))
			}
			tw.Close()
			return b.Bytes()
		}
		a, b := mk(n1, t1, l1), mk(n2, t2, l2)
		if a == nil || b == nil {
			return
		}
		extractContained(t, a, b, a)
	})
}
