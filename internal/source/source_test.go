package source_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

var testConfig = v1.Config{
	Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"},
	Entrypoint:   []string{"/usr/bin/tool"},
	Cmd:          []string{"--help"},
	User:         "1000:1000",
	WorkingDir:   "/opt/app",
	Labels:       map[string]string{"org.opencontainers.image.title": "test", "maintainer": "ci"},
	ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}, "443/tcp": {}},
}

// layeredImage has three layers exercising what real images do: absolute
// and relative links, writes through an absolute directory link, hard
// links, whiteouts, opaque directories (marker before and after the
// layer's own entries), a same-layer whiteout that must not apply, setuid
// files, devices and FIFOs.
func layeredImage(t *testing.T) v1.Image {
	t.Helper()
	l1 := mustTar(t,
		dir("etc/"), file("etc/os-release", "ID=test\n"),
		dir("etc/alternatives/"), symlink("etc/alternatives/python", "/usr/bin/python3.11"),
		dir("usr/"), dir("usr/bin/"),
		ent{name: "usr/bin/tool", typ: tar.TypeReg, mode: 0o755, body: "#!/bin/sh\n"},
		ent{name: "usr/bin/su", typ: tar.TypeReg, mode: 0o4755, body: "su", uid: 0},
		ent{name: "usr/bin/owned", typ: tar.TypeReg, mode: 0o640, body: "x", uid: 1234},
		hardlink("usr/bin/tool2", "usr/bin/tool"),
		symlink("bin", "usr/bin"),
		dir("run/"), dir("var/"), symlink("var/run", "/run"),
		dir("opt/"), dir("opt/app/"), file("opt/app/a", "a"), dir("opt/app/sub/"), file("opt/app/sub/c", "c"),
		dir("opt/late/"), file("opt/late/old", "old"),
		file("gone", "1"), dir("gonedir/"), file("gonedir/x", "x"),
	)
	l2 := mustTar(t,
		file(".wh.gone", ""), file("gonedir/.wh..wh..opq", ""), file(".wh.gonedir", ""),
		dir("opt/app/"), file("opt/app/.wh..wh..opq", ""), file("opt/app/new", "new"),
		file("var/run/pidfile", "42"), // through var/run -> /run: lands in /run
		file("/etc/os-release", "ID=test\nVERSION_ID=2\n"),
		ent{name: "root/", typ: tar.TypeDir, mode: 0o700},
		ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		dir("dev/"), ent{name: "dev/null", typ: tar.TypeChar}, ent{name: "run/fifo", typ: tar.TypeFifo},
		ent{name: "dev/sda", typ: tar.TypeBlock},
	)
	l3 := mustTar(t,
		file("gone", "2"),
		file("same", "kept"), file(".wh.same", ""),
		dir("opt/late/"), file("opt/late/keep", "k"), file("opt/late/.wh..wh..opq", ""),
		file("./usr/bin/../bin/relative", "r"),
	)
	return mustImage(t, testConfig, "amd64", l1, l2, l3)
}

func wantLayeredTree() map[string]string {
	su := "file 4755 \"su\""
	if !isRoot() {
		su = "file 0755 \"su\""
	}
	return map[string]string{
		"/bin":                     "link -> usr/bin",
		"/dev":                     "dir 0755",
		"/etc":                     "dir 0755",
		"/etc/alternatives":        "dir 0755",
		"/etc/alternatives/python": "link -> /usr/bin/python3.11",
		"/etc/os-release":          `file 0644 "ID=test\nVERSION_ID=2\n"`,
		"/gone":                    `file 0644 "2"`,
		"/opt":                     "dir 0755",
		"/opt/app":                 "dir 0755",
		"/opt/app/new":             `file 0644 "new"`,
		"/opt/late":                "dir 0755",
		"/opt/late/keep":           `file 0644 "k"`,
		"/root":                    "dir 0700",
		"/run":                     "dir 0755",
		"/run/pidfile":             `file 0644 "42"`,
		"/same":                    `file 0644 "kept"`,
		"/tmp":                     "dir 1777",
		"/usr":                     "dir 0755",
		"/usr/bin":                 "dir 0755",
		"/usr/bin/owned":           `file 0640 "x"`,
		"/usr/bin/relative":        `file 0644 "r"`,
		"/usr/bin/su":              su,
		"/usr/bin/tool":            `file 0755 "#!/bin/sh\n"`,
		"/usr/bin/tool2":           `file 0755 "#!/bin/sh\n"`,
		"/var":                     "dir 0755",
		"/var/run":                 "link -> /run",
	}
}

func wantSkipped() []snapshot.SkippedEntry {
	return []snapshot.SkippedEntry{
		{Path: "/dev/null", Reason: "character device"},
		{Path: "/dev/sda", Reason: "block device"},
		{Path: "/run/fifo", Reason: "FIFO"},
	}
}

func wantFacts(t *testing.T, img v1.Image, ref string, registryManifest bool) *snapshot.Image {
	t.Helper()
	cn, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	f := &snapshot.Image{
		Reference:    ref,
		ConfigDigest: cn.String(),
		Env:          testConfig.Env,
		Entrypoint:   testConfig.Entrypoint,
		Cmd:          testConfig.Cmd,
		User:         testConfig.User,
		WorkingDir:   testConfig.WorkingDir,
		Labels:       testConfig.Labels,
		ExposedPorts: []string{"443/tcp", "53/udp", "8080/tcp"},
		OS:           "linux",
		Architecture: "amd64",
	}
	if registryManifest {
		d, _ := img.Digest()
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		f.Digest = d.String()
		for _, l := range m.Layers {
			f.Layers = append(f.Layers, snapshot.Layer{Digest: l.Digest.String(), Size: l.Size})
		}
	} else {
		cf, _ := img.ConfigFile()
		for _, h := range cf.RootFS.DiffIDs {
			f.Layers = append(f.Layers, snapshot.Layer{Digest: h.String()})
		}
	}
	return f
}

func writeLayout(t *testing.T, dir string, imgs map[string]v1.Image) {
	t.Helper()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for ref, img := range imgs {
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
			t.Fatal(err)
		}
	}
}

func checkTree(t *testing.T, tree *source.Tree, wantFacts *snapshot.Image) {
	t.Helper()
	if diff := cmp.Diff(wantLayeredTree(), dump(t, tree.Dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSkipped(), tree.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantFacts, tree.Image); diff != "" {
		t.Errorf("image facts (-want +got):\n%s", diff)
	}
	if !tree.RootFS || tree.Architecture != "amd64" {
		t.Errorf("RootFS=%v Architecture=%q, want true amd64", tree.RootFS, tree.Architecture)
	}
	if a, b := inode(t, filepath.Join(tree.Dir, "usr/bin/tool")), inode(t, filepath.Join(tree.Dir, "usr/bin/tool2")); a != b {
		t.Errorf("usr/bin/tool2 is not a hard link of usr/bin/tool (inodes %d, %d)", a, b)
	}
	if isRoot() {
		fi, err := os.Lstat(filepath.Join(tree.Dir, "usr/bin/owned"))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 1234 {
			t.Errorf("usr/bin/owned owned by %d:%d, want 1234:1234", st.Uid, st.Gid)
		}
	}
}

func openAndCheckClose(t *testing.T, spec string, opts source.Options, want *snapshot.Image) {
	t.Helper()
	opts.TempDir = t.TempDir()
	tree, err := source.Open(context.Background(), spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Spec != spec {
		t.Errorf("Spec = %q, want %q", tree.Spec, spec)
	}
	checkTree(t, tree, want)
	if err := tree.Close(); err != nil {
		t.Fatal(err)
	}
	if left := entries(t, opts.TempDir); len(left) != 0 {
		t.Errorf("Close left %v in the temp dir", left)
	}
}

func TestOpenOCILayout(t *testing.T) {
	img := layeredImage(t)
	other := mustImage(t, v1.Config{}, "amd64", mustTar(t, file("other", "x")))
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	single := t.TempDir()
	writeLayout(t, single, map[string]v1.Image{"example.com/test:1": img})
	two := filepath.Join(t.TempDir(), "with:colon")
	writeLayout(t, two, map[string]v1.Image{"example.com/test:1": img, "example.com/other:2": other})

	for _, tc := range []struct{ name, spec, ref string }{
		{"single manifest", "oci:" + single, "example.com/test:1"},
		{"by ref name", "oci:" + two + ":example.com/test:1", "example.com/test:1"},
		{"by tag part of ref name", "oci:" + two + ":1", "example.com/test:1"},
		{"by digest", "oci:" + two + "@" + d.String(), "example.com/test:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			openAndCheckClose(t, tc.spec, source.Options{}, wantFacts(t, img, tc.ref, true))
		})
	}
	t.Run("ambiguous", func(t *testing.T) {
		_, err := source.Open(context.Background(), "oci:"+two, source.Options{TempDir: t.TempDir()})
		if !errors.Is(err, source.ErrBadSource) || !strings.Contains(err.Error(), "add @DIGEST or :REFNAME") {
			t.Errorf("got %v, want a bad-source error asking for @DIGEST or :REFNAME", err)
		}
	})
	t.Run("unknown ref name", func(t *testing.T) {
		_, err := source.Open(context.Background(), "oci:"+two+":nope", source.Options{TempDir: t.TempDir()})
		if !errors.Is(err, source.ErrBadSource) || !strings.Contains(err.Error(), `no manifest named "nope"`) {
			t.Errorf("got %v", err)
		}
	})
}

func TestOpenOCIIndexPlatform(t *testing.T) {
	amd := mustImage(t, v1.Config{}, "amd64", mustTar(t, file("arch", "amd64")))
	arm := mustImage(t, v1.Config{}, "arm64", mustTar(t, file("arch", "arm64")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "multi"})); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			tree, err := source.Open(context.Background(), "oci:"+dir, source.Options{TempDir: t.TempDir(), Platform: "linux/" + arch})
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			got, err := os.ReadFile(filepath.Join(tree.Dir, "arch"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != arch || tree.Architecture != arch || tree.Image.Reference != "multi" {
				t.Errorf("got file %q, Architecture %q, Reference %q; want %s", got, tree.Architecture, tree.Image.Reference, arch)
			}
		})
	}
	_, err = source.Open(context.Background(), "oci:"+dir, source.Options{TempDir: t.TempDir(), Platform: "linux/s390x"})
	if !errors.Is(err, source.ErrBadSource) || !strings.Contains(err.Error(), "--platform") {
		t.Errorf("platform with no image: got %v, want a bad-source error mentioning --platform", err)
	}
}

func TestOpenDockerArchive(t *testing.T) {
	img := layeredImage(t)
	other := mustImage(t, v1.Config{}, "amd64", mustTar(t, file("other", "x")))
	dir := t.TempDir()
	one := filepath.Join(dir, "one.tar")
	if err := tarball.WriteToFile(one, mustTag(t, "example.com/test:1"), img); err != nil {
		t.Fatal(err)
	}
	multi := filepath.Join(dir, "multi.tar")
	if err := tarball.MultiWriteToFile(multi, map[name.Tag]v1.Image{
		mustTag(t, "example.com/test:1"): img, mustTag(t, "localhost:5000/other:2"): other,
	}); err != nil {
		t.Fatal(err)
	}
	t.Run("single", func(t *testing.T) {
		openAndCheckClose(t, "docker-archive:"+one, source.Options{}, wantFacts(t, img, "example.com/test:1", false))
	})
	t.Run("by tag", func(t *testing.T) {
		openAndCheckClose(t, "docker-archive:"+multi+":example.com/test:1", source.Options{}, wantFacts(t, img, "example.com/test:1", false))
	})
	t.Run("by tag with a port", func(t *testing.T) {
		tree, err := source.Open(context.Background(), "docker-archive:"+multi+":localhost:5000/other:2", source.Options{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer tree.Close()
		if diff := cmp.Diff(map[string]string{"/other": `file 0644 "x"`}, dump(t, tree.Dir)); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("ambiguous", func(t *testing.T) {
		_, err := source.Open(context.Background(), "docker-archive:"+multi, source.Options{TempDir: t.TempDir()})
		if !errors.Is(err, source.ErrBadSource) || !strings.Contains(err.Error(), "add :TAG") {
			t.Errorf("got %v, want a bad-source error asking for :TAG", err)
		}
	})
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func TestOpenRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img := layeredImage(t)
	ref, err := name.ParseReference(host+"/test/layered:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	amd := mustImage(t, v1.Config{}, "amd64", mustTar(t, file("arch", "amd64")))
	arm := mustImage(t, v1.Config{}, "arm64", mustTar(t, file("arch", "arm64")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	multiRef, err := name.ParseReference(host+"/test/multi:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(multiRef, idx); err != nil {
		t.Fatal(err)
	}

	t.Run("image", func(t *testing.T) {
		openAndCheckClose(t, "registry:"+host+"/test/layered:1", source.Options{Insecure: true}, wantFacts(t, img, ref.Name(), true))
	})
	t.Run("index by platform", func(t *testing.T) {
		tree, err := source.Open(context.Background(), "registry:"+host+"/test/multi:1", source.Options{Insecure: true, TempDir: t.TempDir(), Platform: "linux/arm64"})
		if err != nil {
			t.Fatal(err)
		}
		defer tree.Close()
		if got, _ := os.ReadFile(filepath.Join(tree.Dir, "arch")); string(got) != "arm64" || tree.Architecture != "arm64" {
			t.Errorf("got %q / %q, want the arm64 image", got, tree.Architecture)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := source.Open(context.Background(), "registry:"+host+"/test/nope:1", source.Options{Insecure: true, TempDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "docker login") {
			t.Errorf("got %v, want an error saying what to check", err)
		}
	})
}

func TestOpenDirAndHost(t *testing.T) {
	rootfs := t.TempDir()
	for _, d := range []string{"etc", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tools := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tools, "Python/3.7.16/x64"), 0o755); err != nil {
		t.Fatal(err)
	}
	afile := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(afile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec string
		want *source.Tree
	}{
		{"host", &source.Tree{Spec: "host", Dir: "/", RootFS: true, Architecture: "amd64"}},
		{"dir:" + rootfs, &source.Tree{Spec: "dir:" + rootfs, Dir: rootfs, RootFS: true}},
		{"dir:" + tools, &source.Tree{Spec: "dir:" + tools, Dir: tools, RootFS: false}},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := source.Open(context.Background(), tc.spec, source.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.spec == "host" {
				tc.want.Architecture = got.Architecture // this machine's
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(source.Tree{})); diff != "" {
				t.Error(diff)
			}
			if err := got.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(got.Dir); err != nil {
				t.Errorf("Close removed a dir: source: %v", err)
			}
		})
	}
}

func TestOpenBadSource(t *testing.T) {
	afile := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(afile, []byte("not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ spec, want string }{
		{"", "use dir:PATH, host"},
		{"nope:/x", `"nope:/x": use dir:PATH`},
		{"/some/path", "use dir:PATH"},
		{"dir:", "names no directory"},
		{"dir:/does/not/exist", "no such file"},
		{"dir:" + afile, "not a directory"},
		{"oci:", "names no image"},
		{"oci:/does/not/exist", "no OCI layout directory"},
		{"oci:" + filepath.Dir(afile), "not an OCI image layout"},
		{"docker-archive:/does/not/exist.tar", "no docker archive file"},
		{"docker-archive:" + afile, "not a docker save archive"},
		{"docker-archive:" + afile + ":Bad Tag", "not a docker save archive"},
		{"registry:UPPER/case:1", "reference"},
		{"registry:", "names no image"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			_, err := source.Open(context.Background(), tc.spec, source.Options{TempDir: t.TempDir(), Platform: ""})
			if !errors.Is(err, source.ErrBadSource) {
				t.Fatalf("got %v, want ErrBadSource", err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tc.want)
			}
		})
	}
	_, err := source.Open(context.Background(), "oci:/x", source.Options{Platform: "linux/"})
	if !errors.Is(err, source.ErrBadSource) {
		t.Errorf("bad platform: got %v, want ErrBadSource", err)
	}
}
