package source_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imagegate/imagegate/internal/source"
)

// The extraction root is TEMP/imagegate-*/rootfs, so "../../../sentinel"
// from the root is the sentinel directory beside TEMP: every escape below
// aims at it, and the test checks it is untouched.
const up = "../../../sentinel"

type hostileCase struct {
	name   string
	layers [][]ent
	opts   source.Options
	is     error
	want   string // the error must contain this
}

func TestHostileArchives(t *testing.T) {
	for _, tc := range []hostileCase{
		{
			name:   "dot-dot entry",
			layers: [][]ent{{file(up+"/pwned", "x")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 1 entry "../../../sentinel/pwned": path leaves the image root`,
		},
		{
			name:   "nested dot-dot entry",
			layers: [][]ent{{dir("a/"), file("a/../../../../sentinel/pwned", "x")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 1 entry "a/../../../../sentinel/pwned": path leaves the image root`,
		},
		{
			name:   "dot-dot directory entry",
			layers: [][]ent{{dir(up + "/newdir/")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 1 entry "../../../sentinel/newdir/": path leaves the image root`,
		},
		{
			name:   "symlink in one layer, write through it in the next",
			layers: [][]ent{{symlink("evil", up)}, {file("evil/pwned", "x")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 2 entry "evil/pwned": path leaves the image root through symbolic link "/evil" -> "../../../sentinel"`,
		},
		{
			name:   "deep relative symlink then write, same layer",
			layers: [][]ent{{dir("a/"), dir("a/b/"), symlink("a/b/up", "../../../../../../../../sentinel"), file("a/b/up/pwned", "x")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 1 entry "a/b/up/pwned": path leaves the image root through symbolic link "/a/b/up" -> "../../../../../../../../sentinel"`,
		},
		{
			name:   "chain of symlinks",
			layers: [][]ent{{symlink("l1", "l2"), symlink("l2", "sub/../"+up), dir("sub/")}, {file("l1/pwned", "x")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 2 entry "l1/pwned": path leaves the image root through symbolic link "/l2" -> "sub/../../../../sentinel"`,
		},
		{
			name:   "absolute symlink that climbs",
			layers: [][]ent{{symlink("abs", "/../../../sentinel"), file("abs/pwned", "x")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 1 entry "abs/pwned": path leaves the image root through symbolic link "/abs" -> "/../../../sentinel"`,
		},
		{
			name:   "symlink loop",
			layers: [][]ent{{symlink("x", "y"), symlink("y", "x"), file("x/f", "x")}},
			want:   `layer 1 entry "x/f": too many levels of symbolic links`,
		},
		{
			// Extraction writes d/f in the background: the write beneath
			// it must still find a file there, not make a directory.
			name:   "write beneath a file written just before, same layer",
			layers: [][]ent{{dir("d/"), file("d/f", "x"), file("d/f/x", "y")}},
			want:   `layer 1 entry "d/f/x": /d/f is not a directory`,
		},
		{
			name:   "symlink over a file written just before, then write through it",
			layers: [][]ent{{dir("d/"), file("d/f", "x"), symlink("d/f", up), file("d/f/pwned", "y")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 1 entry "d/f/pwned": path leaves the image root through symbolic link "/d/f" -> "../../../sentinel"`,
		},
		{
			name:   "hard link to outside",
			layers: [][]ent{{hardlink("h", up+"/secret")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 1 entry "h": path leaves the image root: hard link to "../../../sentinel/secret"`,
		},
		{
			name:   "absolute hard link to the host's /etc/passwd",
			layers: [][]ent{{hardlink("passwd", "/etc/passwd")}},
			want:   `layer 1 entry "passwd": hard link target "/etc/passwd" is not in the image`,
		},
		{
			name:   "hard link through an escaping symlink",
			layers: [][]ent{{symlink("d", up), hardlink("h", "d/secret")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 1 entry "h": hard link target "d/secret": path leaves the image root through symbolic link "/d" -> "../../../sentinel"`,
		},
		{
			name:   "whiteout through an escaping symlink",
			layers: [][]ent{{symlink("d", up)}, {file("d/.wh.secret", "")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 2 entry "d/.wh.secret": path leaves the image root`,
		},
		{
			name:   "opaque marker through an escaping symlink",
			layers: [][]ent{{symlink("d", up)}, {file("d/.wh..wh..opq", "")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 2 entry "d/.wh..wh..opq": path leaves the image root`,
		},
		{
			name:   "dot-dot whiteout",
			layers: [][]ent{{file(up+"/.wh.secret", "")}},
			is:     source.ErrUnsafeEntry,
			want:   `layer 1 entry "../../../sentinel/.wh.secret": path leaves the image root`,
		},
		{
			name:   "file over the per-file limit",
			layers: [][]ent{{ent{name: "bomb", typ: tar.TypeReg, size: 2 << 20}}},
			opts:   source.Options{MaxFileSize: 1 << 20},
			is:     source.ErrLimit,
			want:   `layer 1 entry "bomb": image exceeds a limit: file is 2097152 bytes, over the 1 MiB per-file limit (raise it with --max-file-size)`,
		},
		{
			name: "files over the total limit",
			layers: [][]ent{
				{ent{name: "a", typ: tar.TypeReg, size: 400 << 10}, ent{name: "b", typ: tar.TypeReg, size: 400 << 10}},
				{ent{name: "c", typ: tar.TypeReg, size: 400 << 10}},
			},
			opts: source.Options{MaxTotalSize: 1 << 20},
			is:   source.ErrLimit,
			want: `layer 2 entry "c": image exceeds a limit: image is over the 1 MiB total size limit (raise it with --max-total-size)`,
		},
		{
			name:   "too many entries",
			layers: [][]ent{{dir("d/"), file("d/1", ""), file("d/2", "")}, {file("d/3", ""), file("d/4", "")}},
			opts:   source.Options{MaxEntries: 4},
			is:     source.ErrLimit,
			want:   `layer 2 entry "d/4": image exceeds a limit: more than 4 entries`,
		},
	} {
		// The same refusals whether the image is extracted or streamed
		// into memory (--exec none).
		for _, inMemory := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/in-memory=%v", tc.name, inMemory), func(t *testing.T) {
				testHostileArchive(t, tc, inMemory)
			})
		}
	}
}

func testHostileArchive(t *testing.T, tc hostileCase, inMemory bool) {
	base := t.TempDir()
	sentinel := filepath.Join(base, "sentinel")
	temp := filepath.Join(base, "temp")
	for _, d := range []string{sentinel, temp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sentinel, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	var layers [][]byte
	for _, l := range tc.layers {
		layers = append(layers, mustTar(t, l...))
	}
	archive := filepath.Join(t.TempDir(), "hostile.tar")
	if err := tarball.WriteToFile(archive, mustTag(t, "hostile:1"), mustImage(t, v1.Config{}, "amd64", layers...)); err != nil {
		t.Fatal(err)
	}
	opts := tc.opts
	opts.TempDir = temp
	opts.InMemory = inMemory
	tree, err := source.Open(context.Background(), "docker-archive:"+archive, opts)
	if err == nil {
		tree.Close()
		t.Fatalf("extracted; want an error containing %q", tc.want)
	}
	if !strings.Contains(err.Error(), "docker-archive:"+archive+": "+tc.want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error:\n  %v\nwant one line containing:\n  docker-archive:%s: %s", err, archive, tc.want)
	}
	if tc.is != nil && !errors.Is(err, tc.is) {
		t.Errorf("error %v does not wrap %v", err, tc.is)
	}
	if diff := cmp.Diff([]string{"secret"}, entries(t, sentinel)); diff != "" {
		t.Errorf("sentinel directory changed (-want +got):\n%s", diff)
	}
	if b, err := os.ReadFile(filepath.Join(sentinel, "secret")); err != nil || string(b) != "secret" {
		t.Errorf("sentinel file changed: %q, %v", b, err)
	}
	if left := entries(t, temp); len(left) != 0 {
		t.Errorf("partial extraction not removed: %v", left)
	}
	if got := entries(t, base); !slices.Equal(got, []string{"sentinel", "sentinel/secret", "temp"}) {
		t.Errorf("entries beside the temp dir: %v", got)
	}
}

func TestApplyLayerStopsWhenCanceled(t *testing.T) {
	x, err := source.NewExtractor(t.TempDir(), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := x.ApplyLayer(ctx, bytes.NewReader(mustTar(t, file("f", "x")))); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestOpenRemovesItsTempDirOnError(t *testing.T) {
	temp := t.TempDir()
	archive := filepath.Join(t.TempDir(), "a.tar")
	// A valid first layer, then a truncated one: the first is extracted
	// before the error, and must be gone afterwards.
	good := mustTar(t, dir("etc/"), file("etc/os-release", "ID=x\n"))
	bad := mustTar(t, file("big", strings.Repeat("x", 4096)))[:1024]
	if err := tarball.WriteToFile(archive, mustTag(t, "t:1"), mustImage(t, v1.Config{}, "amd64", good, bad)); err != nil {
		t.Fatal(err)
	}
	_, err := source.Open(context.Background(), "docker-archive:"+archive, source.Options{TempDir: temp})
	if err == nil || !strings.Contains(err.Error(), `layer 2 entry "big": read contents (truncated or corrupt layer?): unexpected EOF`) {
		t.Errorf("got %v, want a read error naming layer 2 and the entry", err)
	}
	if left := entries(t, temp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
