package scan_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

var lddPath = regexp.MustCompile(`(?m)(?:=>\s*)?(/\S+)\s+\(0x`)

// rootfsWithPython builds a root filesystem holding a CPython build in
// /usr/local and exactly the shared libraries ldd says it and its
// extensions need from this machine, minus those named in leaveOut.
func rootfsWithPython(t *testing.T, version string, leaveOut ...string) string {
	t.Helper()
	build := testenv.RequirePython(t, version)
	root := t.TempDir()
	prefix := filepath.Join(root, "usr", "local")
	xy := version[:strings.LastIndex(version, ".")]
	var elves []string
	err := filepath.WalkDir(build, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(build, p)
		if d.IsDir() && (rel == filepath.Join("lib", "python"+xy, "test") || d.Name() == "__pycache__") {
			return filepath.SkipDir
		}
		to := filepath.Join(prefix, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		}
		if strings.HasSuffix(p, ".so") || rel == filepath.Join("bin", "python"+xy) {
			elves = append(elves, p)
		}
		return os.Link(p, to)
	})
	if err != nil {
		t.Fatal(err)
	}
	libs := map[string]bool{}
	for _, e := range elves {
		out, err := exec.Command("ldd", e).Output()
		if err != nil {
			continue // not dynamic
		}
		for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
			libs[m[1]] = true
		}
	}
	for lib := range libs {
		base := filepath.Base(lib)
		skip := false
		for _, l := range leaveOut {
			skip = skip || strings.HasPrefix(base, l)
		}
		if skip {
			continue
		}
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, lib)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(real)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	osRelease := "ID=testlinux\nVERSION_ID=1\nPRETTY_NAME=\"Test Linux 1\"\n"
	if err := os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte(osRelease), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func module(t *testing.T, s *snapshot.Snapshot, kind, name string) snapshot.Module {
	t.Helper()
	for _, r := range s.Runtimes {
		if r.Kind != kind {
			continue
		}
		for _, m := range r.Modules {
			if m.Name == name {
				return m
			}
		}
	}
	t.Fatalf("no %s module %s in %+v", kind, name, s.Runtimes)
	return snapshot.Module{}
}

func scanSource(t *testing.T, spec, execMode string) *snapshot.Snapshot {
	t.Helper()
	ctx := context.Background()
	tree, err := source.Open(ctx, spec, source.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	snap, err := scan.Scan(ctx, tree, scan.Options{Exec: execMode})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func requireChroot(t *testing.T) {
	t.Helper()
	err := sandbox.Permitted()
	testenv.Require(t, err == nil, "%v", err)
}

// TestScanRootFSMissingLibrary: an image whose Python was built against
// libsqlite3 but ships without it. Without running anything the scan names
// the library; chrooted, the real import fails with the loader's words.
func TestScanRootFSMissingLibrary(t *testing.T) {
	requireChroot(t)
	root := rootfsWithPython(t, "3.7.16", "libsqlite3.so")
	tests := []struct {
		exec, wantExec, wantStatus, wantError string
	}{
		{scan.ExecNone, "none", snapshot.StatusBroken, "libsqlite3.so.0"},
		{scan.ExecChroot, "chroot", snapshot.StatusImportError, "libsqlite3.so.0: cannot open shared object file"},
		{scan.ExecAuto, "chroot", snapshot.StatusImportError, "libsqlite3.so.0: cannot open shared object file"},
	}
	for _, tc := range tests {
		t.Run(tc.exec, func(t *testing.T) {
			snap := scanSource(t, "dir:"+root, tc.exec)
			if snap.Exec != tc.wantExec {
				t.Errorf("exec = %q, want %q", snap.Exec, tc.wantExec)
			}
			if snap.OS.ID != "testlinux" {
				t.Errorf("os = %+v", snap.OS)
			}
			m := module(t, snap, "python", "sqlite3")
			if m.Status != tc.wantStatus || !strings.Contains(m.Error+strings.Join(m.MissingLibraries, " "), tc.wantError) {
				t.Errorf("sqlite3 = %+v, want %s mentioning %q", m, tc.wantStatus, tc.wantError)
			}
			if got := module(t, snap, "python", "ssl"); got.Status != snapshot.StatusOK {
				t.Errorf("ssl = %+v, want ok", got)
			}
			if got := module(t, snap, "python", "json"); got.Status != snapshot.StatusOK {
				t.Errorf("json = %+v, want ok", got)
			}
		})
	}
	// The chrooted sweep must not have written into the image directory.
	if _, err := os.Stat(filepath.Join(root, "usr", "local", "lib", "python3.7", "__pycache__")); err == nil {
		t.Error("the scan wrote bytecode into the scanned root filesystem")
	}
}

// TestScanOCIImage: the same root filesystem as a two-layer OCI image (the
// second layer deletes libsqlite3 with a whiteout), scanned from its layout
// and run chrooted inside the extracted image.
func TestScanOCIImage(t *testing.T) {
	requireChroot(t)
	root := rootfsWithPython(t, "3.7.16")
	base, err := tarball.LayerFromOpener(tarOpener(t, root))
	if err != nil {
		t.Fatal(err)
	}
	var lib string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "libsqlite3.so") {
			lib, _ = filepath.Rel(root, p)
		}
		return nil
	})
	if lib == "" {
		t.Fatal("the fixture has no libsqlite3")
	}
	var wh bytes.Buffer
	tw := tar.NewWriter(&wh)
	_ = tw.WriteHeader(&tar.Header{Name: filepath.Join(filepath.Dir(lib), ".wh."+filepath.Base(lib)), Mode: 0o644, Typeflag: tar.TypeReg})
	_ = tw.Close()
	whiteout, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(wh.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, base, whiteout)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	cfg.Config.User = "1000"
	cfg.OS, cfg.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	snap := scanSource(t, "oci:"+dir, scan.ExecAuto)
	if snap.Exec != "chroot" || snap.Image == nil || snap.Image.User != "1000" || len(snap.Image.Layers) != 2 {
		t.Fatalf("exec %q, image %+v", snap.Exec, snap.Image)
	}
	m := module(t, snap, "python", "sqlite3")
	if m.Status != snapshot.StatusImportError || !strings.Contains(m.Error, "libsqlite3.so.0") {
		t.Errorf("sqlite3 = %+v, want import-error naming libsqlite3.so.0", m)
	}
	var found bool
	for _, tool := range snap.Tools {
		found = found || tool.Path == "/usr/local/bin/python3.7"
	}
	if !found {
		t.Errorf("tools on the image's PATH: %+v", snap.Tools)
	}
}

// tarOpener streams a directory as an uncompressed layer.
func tarOpener(t *testing.T, root string) tarball.Opener {
	return func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || p == root {
					return err
				}
				rel, _ := filepath.Rel(root, p)
				info, err := d.Info()
				if err != nil {
					return err
				}
				link := ""
				if d.Type()&fs.ModeSymlink != 0 {
					if link, err = os.Readlink(p); err != nil {
						return err
					}
				}
				hdr, err := tar.FileInfoHeader(info, link)
				if err != nil {
					return err
				}
				hdr.Name = rel
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if info.Mode().IsRegular() {
					f, err := os.Open(p)
					if err != nil {
						return err
					}
					defer f.Close()
					_, err = io.Copy(tw, f)
					return err
				}
				return nil
			})
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
}
