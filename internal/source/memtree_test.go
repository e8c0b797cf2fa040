package source_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imagegate/imagegate/internal/source"
)

// dumpTree is dump through the Tree's own reads, so that a tree held in
// memory and one extracted to disk compare alike.
func dumpTree(tb testing.TB, tree *source.Tree) map[string]string {
	tb.Helper()
	out := map[string]string{}
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := tree.ReadDir(dir)
		if err != nil {
			tb.Fatalf("ReadDir %s: %v", dir, err)
		}
		for _, e := range ents {
			p := path.Join(dir, e.Name())
			fi, err := tree.Lstat(p)
			if err != nil {
				tb.Fatalf("Lstat %s: %v", p, err)
			}
			mode := fmt.Sprintf("%04o", uint32(fi.Mode().Perm())|special(fi.Mode()))
			switch {
			case fi.IsDir():
				out[p] = "dir " + mode
				walk(p)
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := tree.Readlink(p)
				if err != nil {
					tb.Fatal(err)
				}
				out[p] = "link -> " + target
			case fi.Mode().IsRegular():
				body, err := tree.ReadFile(p)
				if err != nil {
					tb.Fatal(err)
				}
				if int64(len(body)) != fi.Size() {
					tb.Errorf("%s: read %d bytes, Size says %d", p, len(body), fi.Size())
				}
				out[p] = fmt.Sprintf("file %s %q", mode, body)
			default:
				out[p] = "other " + fi.Mode().String()
			}
		}
	}
	walk("/")
	return out
}

// TestOpenInMemory streams the layered image of every kind of source into
// memory: the same files, links, modes, whiteouts and skipped entries as
// extraction gives, links followed inside the image, and no host paths.
func TestOpenInMemory(t *testing.T) {
	img := layeredImage(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "one.tar")
	if err := tarball.WriteToFile(archive, mustTag(t, "example.com/test:1"), img); err != nil {
		t.Fatal(err)
	}
	oci := filepath.Join(dir, "oci")
	writeLayout(t, oci, map[string]v1.Image{"example.com/test:1": img})
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host+"/test/layered:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	// The image's own modes: nothing is created, so nothing is dropped for
	// a user who is not root.
	want := wantLayeredTree()
	want["/usr/bin/su"] = "file 4755 \"su\""

	for _, spec := range []string{"docker-archive:" + archive, "oci:" + oci, "registry:" + ref.String()} {
		t.Run(strings.SplitN(spec, ":", 2)[0], func(t *testing.T) {
			temp := t.TempDir()
			tree, err := source.Open(context.Background(), spec, source.Options{InMemory: true, Insecure: true, TempDir: temp})
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			if left := entries(t, temp); len(left) != 0 {
				t.Errorf("wrote %v to the temp dir", left)
			}
			if tree.Dir != "" || !tree.RootFS || tree.Architecture != "amd64" || tree.Image == nil {
				t.Errorf("Dir=%q RootFS=%v Architecture=%q Image=%v", tree.Dir, tree.RootFS, tree.Architecture, tree.Image)
			}
			if diff := cmp.Diff(want, dumpTree(t, tree)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantSkipped(), tree.Skipped); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
			for in, res := range map[string]string{
				"/bin/tool":                "/usr/bin/tool",
				"bin/../bin/tool":          "/usr/bin/tool",
				"/var/run/pidfile":         "/run/pidfile",
				"/etc/alternatives/python": "/usr/bin/python3.11", // missing: the path it would be
				"/../../etc/os-release":    "/etc/os-release",
			} {
				if got, err := tree.Resolve(in); err != nil || got != res {
					t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, res)
				}
			}
			if b, err := tree.ReadFile("/var/run/pidfile"); err != nil || string(b) != "42" {
				t.Errorf("ReadFile through /var/run -> /run: %q, %v", b, err)
			}
			if _, err := tree.Stat("/etc/alternatives/python"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat of a dangling link: %v, want ErrNotExist", err)
			}
			if fi, err := tree.Lstat("/etc/alternatives/python"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("Lstat of a dangling link: %v, %v", fi, err)
			}
			if _, err := tree.Open("/gone/x"); !errors.Is(err, syscall.ENOTDIR) {
				t.Errorf("Open under a file: %v, want ENOTDIR as on disk", err)
			}
			if got, err := tree.Glob("/usr/bin/t*"); err != nil || !cmp.Equal(got, []string{"/usr/bin/tool", "/usr/bin/tool2"}) {
				t.Errorf("Glob = %v, %v", got, err)
			}
			if _, err := tree.HostPath("/etc/os-release"); !errors.Is(err, source.ErrNotOnDisk) {
				t.Errorf("HostPath: %v, want ErrNotOnDisk", err)
			}
			tree.Close()
			if b, err := tree.ReadFile("/etc/os-release"); err == nil {
				t.Errorf("ReadFile after Close: %q, want an error", b)
			}
		})
	}

	t.Run("same through the Tree on disk", func(t *testing.T) {
		tree, err := source.Open(context.Background(), "docker-archive:"+archive, source.Options{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer tree.Close()
		w := wantLayeredTree()
		if diff := cmp.Diff(w, dumpTree(t, tree)); diff != "" {
			t.Errorf("tree (-want +got):\n%s", diff)
		}
		if got, err := tree.Resolve("/var/run/pidfile"); err != nil || got != "/run/pidfile" {
			t.Errorf("Resolve = %q, %v", got, err)
		}
	})
}

// TestInMemoryContents checks what a streamed tree keeps and what it reads
// back from the layer: large files come back whole from a compressed and
// from an uncompressed layer, and an ELF file's dynamic section and
// symbols are served from what was kept, without reading the layer again.
func TestInMemoryContents(t *testing.T) {
	elfPath := "/usr/bin/ls"
	elfBody, err := os.ReadFile(elfPath)
	if err != nil {
		t.Skipf("no ELF file to test with: %v", err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB, over what is kept whole
	layer := mustTar(t,
		ent{name: "usr/bin/ls", typ: tar.TypeReg, mode: 0o755, body: string(elfBody)},
		ent{name: "big", typ: tar.TypeReg, body: string(big)},
		file("small", "small"),
	)
	img := mustImage(t, v1.Config{}, "amd64", layer)
	dir := t.TempDir()
	compressed := filepath.Join(dir, "gz.tar")
	if err := tarball.WriteToFile(compressed, mustTag(t, "t:1"), img); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain.tar")
	writeUncompressedArchive(t, plain, img, layer)

	for _, archive := range []string{compressed, plain} {
		t.Run(filepath.Base(archive), func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			tree, err := source.Open(context.Background(), "docker-archive:"+archive, source.Options{InMemory: true, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()

			f, err := tree.Open("/usr/bin/ls")
			if err != nil {
				t.Fatal(err)
			}
			ef, err := elf.NewFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ef.DynString(elf.DT_NEEDED)
			if err != nil {
				t.Fatal(err)
			}
			syms, err := ef.DynamicSymbols()
			if err != nil {
				t.Fatal(err)
			}
			hf, err := elf.Open(elfPath)
			if err != nil {
				t.Fatal(err)
			}
			defer hf.Close()
			want, _ := hf.DynString(elf.DT_NEEDED)
			wantSyms, _ := hf.DynamicSymbols()
			if !cmp.Equal(got, want) || len(syms) != len(wantSyms) {
				t.Errorf("DT_NEEDED %v (want %v), %d dynamic symbols (want %d)", got, want, len(syms), len(wantSyms))
			}
			if strings.Contains(logs.String(), "read a file back") {
				t.Errorf("the ELF tables were not kept:\n%s", logs.String())
			}

			// Collectors read concurrently; the first reads back, the others
			// wait for it or find it loaded.
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					b, err := tree.ReadFile("/big")
					if err != nil || !bytes.Equal(b, big) {
						t.Errorf("big file: %d bytes, %v; want %d bytes as written", len(b), err, len(big))
					}
				})
			}
			wg.Wait()
			if n := strings.Count(logs.String(), "read a file back"); n != 1 {
				t.Errorf("read back %d times, want once", n)
			}
			if !strings.Contains(logs.String(), "read a file back") {
				t.Errorf("the big file was kept in memory, want it read back from its layer:\n%s", logs.String())
			}
			whole, err := tree.ReadFile("/usr/bin/ls")
			if err != nil || !bytes.Equal(whole, elfBody) {
				t.Errorf("whole ELF file: %d bytes, %v; want %d", len(whole), err, len(elfBody))
			}
			if s, err := tree.ReadFile("small"); err != nil || string(s) != "small" {
				t.Errorf("small file: %q, %v", s, err)
			}
		})
	}
}

// writeUncompressedArchive writes a docker save archive whose one layer
// is stored as a plain tar, as docker itself does.
func writeUncompressedArchive(t *testing.T, file string, img v1.Image, layer []byte) {
	t.Helper()
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	manifest := `[{"Config":"config.json","RepoTags":["t:1"],"Layers":["layer/layer.tar"]}]`
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range []struct {
		name string
		body []byte
	}{{"config.json", cfg}, {"layer/layer.tar", layer}, {"manifest.json", []byte(manifest)}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
