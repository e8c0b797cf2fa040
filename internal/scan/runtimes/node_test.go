package runtimes_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// debs is where scripts/fetch-fixture-debs puts the Debian packages that
// fixtures unpack.
func debs(tb testing.TB, names ...string) []string {
	tb.Helper()
	dir := os.Getenv("IMAGEGATE_DEBS")
	if dir == "" {
		dir = "/var/cache/imagegate/debs"
	}
	var out []string
	for _, n := range names {
		m, _ := filepath.Glob(filepath.Join(dir, n+"_*.deb"))
		testenv.Require(tb, len(m) > 0, "needs %s_*.deb in %s: run scripts/fetch-fixture-debs", n, dir)
		out = append(out, m[0])
	}
	return out
}

var lddPath = regexp.MustCompile(`(?:=>\s+)?(/\S+)\s+\(0x`)

// mustRootFS unpacks packages into a new root filesystem and copies in the
// shared libraries of this machine that its ELF files need and it lacks
// (libc, libstdc++, ICU, OpenSSL, the loader), at the same paths: a minimal
// Debian image in which the unpacked programs run chrooted. elves are glob
// patterns relative to the root.
func mustRootFS(tb testing.TB, pkgs []string, elves ...string) string {
	tb.Helper()
	root := tb.TempDir()
	for _, p := range pkgs {
		mustRun(tb, "dpkg-deb", "-x", p, root)
	}
	mustCopyLibraries(tb, root, elves...)
	return root
}

// mustCopyLibraries copies into root the shared libraries of this machine
// that the ELF files matching elves (glob patterns relative to root) need
// and root lacks, at the same paths, and makes the directories a chroot
// needs.
func mustCopyLibraries(tb testing.TB, root string, elves ...string) {
	tb.Helper()
	libDirs := []string{filepath.Join(root, "usr/lib/x86_64-linux-gnu"), filepath.Join(root, "lib/x86_64-linux-gnu")}
	var files []string
	for _, pattern := range elves {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		if len(m) == 0 {
			tb.Fatalf("%s: nothing unpacked matches", pattern)
		}
		files = append(files, m...)
	}
	for _, e := range files {
		cmd := exec.Command("ldd", e)
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+strings.Join(libDirs, ":"))
		out, err := cmd.Output()
		if err != nil {
			tb.Fatalf("ldd %s: %v", e, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			m := lddPath.FindStringSubmatch(sc.Text())
			if m == nil || strings.HasPrefix(m[1], root) {
				continue
			}
			copyInto(tb, root, m[1])
		}
	}
	for _, d := range []string{"tmp", "proc", "dev", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
}

// copyInto copies the host file at p (its links followed) to the same path
// under root.
func copyInto(tb testing.TB, root, p string) {
	tb.Helper()
	dst := filepath.Join(root, p)
	if _, err := os.Lstat(dst); err == nil {
		return
	}
	in, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		tb.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// collectRootFS scans a root filesystem, chrooted with execution.
func collectRootFS(tb testing.TB, root string, execute bool) ([]snapshot.Runtime, []string) {
	tb.Helper()
	tg := &source.Tree{Dir: root, RootFS: true}
	if execute {
		testenv.Require(tb, sandbox.Permitted() == nil, "needs chroot execution: %v", sandbox.Permitted())
		r, err := sandbox.NewChroot(root, sandbox.ChrootOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		tg.Runner = r
	}
	f := runtimes.NewFinder(runtimes.Options{})
	mustWalk(tb, tg, f, "/")
	rs, warnings, err := f.Collect(context.Background(), tg)
	if err != nil {
		tb.Fatal(err)
	}
	return rs, warnings
}

// nodeRootFS is Debian's nodejs and libnode unpacked into a root
// filesystem; withoutICU removes libicu from it, as an image build that
// purges "unneeded" libraries does.
func nodeRootFS(tb testing.TB, withoutICU bool) string {
	tb.Helper()
	root := mustRootFS(tb, debs(tb, "nodejs", "libnode108", "libuv1", "libc-ares2", "node-acorn", "node-cjs-module-lexer", "node-undici"), "usr/bin/node")
	if withoutICU {
		icu, _ := filepath.Glob(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libicu*"))
		icu2, _ := filepath.Glob(filepath.Join(root, "lib/x86_64-linux-gnu/libicu*"))
		if len(icu)+len(icu2) == 0 {
			tb.Fatal("the Node.js fixture has no libicu to remove")
		}
		for _, p := range append(icu, icu2...) {
			if err := os.Remove(p); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return root
}

func TestNodeDebian(t *testing.T) {
	for _, tc := range []struct {
		name       string
		withoutICU bool
	}{{"debian", false}, {"debian without libicu", true}} {
		for _, mode := range modes() {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				rs, warnings := collectRootFS(t, nodeRootFS(t, tc.withoutICU), mode.execute)
				r := onlyRuntime(t, rs, runtimes.KindNode)
				var bad []string
				for _, m := range r.Modules {
					if m.Status != snapshot.StatusOK {
						bad = append(bad, m.Name+" "+m.Status)
					}
				}
				var want []string
				if tc.withoutICU {
					want = []string{"node broken"}
				}
				if diff := cmp.Diff(want, bad); diff != "" {
					t.Errorf("parts not ok (-want +got):\n%s\nwarnings: %q", diff, warnings)
				}
				if len(r.Modules) < 40 {
					t.Errorf("only %d parts: %v", len(r.Modules), statuses(r))
				}
				if !tc.withoutICU {
					return
				}
				m := module(t, r, "node")
				wantErr := "libicui18n.so.72: cannot open shared object file: No such file or directory"
				if !strings.Contains(m.Error, wantErr) || !strings.Contains(strings.Join(m.MissingLibraries, " "), "libicu") {
					t.Errorf("node part = %+v, want the loader's %q and the ICU libraries", m, wantErr)
				}
				if mode.execute && !strings.Contains(m.Error, "error while loading shared libraries") {
					t.Errorf("node part error %q: want the loader's own words from running it", m.Error)
				}
			})
		}
	}
}

func TestNodeGate(t *testing.T) {
	mustGate(t, regression{name: "debian without libicu", wantID: "runtime/node@18/module/node", wantStatus: snapshot.StatusBroken,
		goodRoot: func(tb testing.TB) string { return nodeRootFS(tb, false) },
		badRoot:  func(tb testing.TB) string { return nodeRootFS(tb, true) }, rootFS: true})
}

// TestNodeHost checks this machine's Node.js: every built-in module, full
// ICU, npm, npx and corepack.
func TestNodeHost(t *testing.T) {
	testenv.Require(t, fileExists("/usr/bin/node") && fileExists("/usr/lib/node_modules/npm"), "needs Node.js with npm in /usr")
	tg := &source.Tree{Dir: "/", RootFS: true, Runner: sandbox.NewLocal("/")}
	f := runtimes.NewFinder(runtimes.Options{})
	entries, err := os.ReadDir("/usr/bin")
	if err != nil {
		t.Fatal(err)
	}
	f.Visit("/usr/bin", entries)
	rs, warnings, err := f.Collect(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	r := onlyRuntime(t, rs, runtimes.KindNode)
	for _, m := range r.Modules {
		if m.Status != snapshot.StatusOK {
			t.Errorf("node %s: %+v (warnings %q)", r.Version, m, warnings)
		}
	}
	got := statuses(r)
	for _, name := range []string{"node", "intl", "crypto", "npm", "npx", "corepack", "fs", "zlib"} {
		if got[name] != snapshot.StatusOK {
			t.Errorf("node %s: %s is %q, want ok", r.Version, name, got[name])
		}
	}
}
