package source_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// TestMmdebstrapRootfs extracts a real Debian root filesystem, as
// mmdebstrap writes it (device nodes included), wrapped as a one-layer OCI
// image. It downloads packages, so it runs only when asked:
// IMAGEGATE_TEST_MMDEBSTRAP=1 (installs mmdebstrap with apt-get if missing).
func TestMmdebstrapRootfs(t *testing.T) {
	if os.Getenv("IMAGEGATE_TEST_MMDEBSTRAP") != "1" {
		t.Skip("set IMAGEGATE_TEST_MMDEBSTRAP=1 to build a Debian root filesystem with mmdebstrap")
	}
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		install := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "mmdebstrap")
		install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("apt-get install mmdebstrap: %v\n%s", err, out)
		}
	}
	work := t.TempDir()
	rootfs := filepath.Join(work, "rootfs.tar")
	cmd := exec.Command("mmdebstrap", "--quiet", "--variant=minbase", "bookworm", rootfs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mmdebstrap: %v\n%s", err, out)
	}
	layer, err := tarball.LayerFromFile(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	oci := filepath.Join(work, "oci")
	lp, err := layout.Write(oci, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}

	tree, err := source.Open(context.Background(), "oci:"+oci, source.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()

	osRelease, err := os.ReadFile(filepath.Join(tree.Dir, "etc/os-release"))
	if err != nil || !strings.Contains(string(osRelease), "ID=debian") {
		t.Errorf("etc/os-release: %v\n%s", err, osRelease)
	}
	if fi, err := os.Lstat(filepath.Join(tree.Dir, "usr/bin/dpkg")); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("usr/bin/dpkg: want an executable regular file, got %v, %v", fi, err)
	}
	for link, want := range map[string]string{
		"bin":  "usr/bin", // merged /usr, relative
		"lib":  "usr/lib",
		"sbin": "usr/sbin",
	} {
		if got, err := os.Readlink(filepath.Join(tree.Dir, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want -> %q", link, got, err, want)
		}
	}
	// Debian's alternatives are absolute links; they must be kept verbatim.
	if got, err := os.Readlink(filepath.Join(tree.Dir, "etc/alternatives/awk")); err != nil || !strings.HasPrefix(got, "/usr/bin/") {
		t.Errorf("etc/alternatives/awk -> %q (%v), want an absolute link into /usr/bin", got, err)
	}
	want := map[string]bool{"/dev/null": false, "/dev/zero": false}
	for _, s := range tree.Skipped {
		if _, ok := want[s.Path]; ok && s.Reason == "character device" {
			want[s.Path] = true
		}
	}
	for p, found := range want {
		if !found {
			t.Errorf("%s not recorded as a skipped character device; skipped: %v", p, tree.Skipped)
		}
		if _, err := os.Lstat(filepath.Join(tree.Dir, p)); err == nil {
			t.Errorf("%s was created", p)
		}
	}
	t.Logf("%d entries skipped", len(tree.Skipped))
}
