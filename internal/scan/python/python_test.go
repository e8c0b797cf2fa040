package python_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/python"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// mustCopy copies a tree with hard links where it can (the fixtures only
// ever delete or add files, never write into one).
func mustCopy(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-al", src, dst).CombinedOutput(); err != nil {
		os.RemoveAll(dst)
		if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
		}
		_ = out
	}
}

func mustRemoveGlob(t testing.TB, pattern string) {
	t.Helper()
	matches, _ := filepath.Glob(pattern)
	if len(matches) == 0 {
		t.Fatalf("nothing matches %s", pattern)
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
}

// walk visits tgt's directories as the scan's single walk does: in-image
// paths, no symbolic links followed, site-packages not entered, bounded
// depth; only below the given in-image directories.
func walk(t testing.TB, f *python.Finder, root string, under ...string) {
	t.Helper()
	if len(under) == 0 {
		under = []string{"/"}
	}
	for _, u := range under {
		start := filepath.Join(root, u)
		err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			in := path.Clean("/" + filepath.ToSlash(rel))
			if strings.Count(in, "/") > 9 || d.Name() == "site-packages" || d.Name() == "dist-packages" || d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil
			}
			if f.Visit(in, entries) {
				return filepath.SkipDir
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func collect(t testing.TB, tgt *source.Tree, opts python.Options, under ...string) []snapshot.Runtime {
	t.Helper()
	f := python.NewFinder(opts)
	walk(t, f, tgt.Dir, under...)
	rts, warnings, err := f.Collect(context.Background(), tgt)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Logf("warning: %s", w)
	}
	return rts
}

func module(t testing.TB, rt snapshot.Runtime, name string) snapshot.Module {
	t.Helper()
	for _, m := range rt.Modules {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("%s %s: no module %s", rt.Path, rt.Version, name)
	return snapshot.Module{}
}

// TestSqlite3WithoutExtension is the 2019 incident: a Python 3.7 whose
// lib-dynload lacks _sqlite3, scanned as a tool folder, with and without
// running it; the unmodified copy is fine both ways.
func TestSqlite3WithoutExtension(t *testing.T) {
	src := testenv.RequirePython(t, "3.7")
	version := filepath.Base(src)
	broken := t.TempDir()
	mustCopy(t, src, filepath.Join(broken, version))
	mustRemoveGlob(t, filepath.Join(broken, version, "lib", "python3.7", "lib-dynload", "_sqlite3*.so"))
	healthy := t.TempDir()
	mustCopy(t, src, filepath.Join(healthy, version))

	for _, tc := range []struct {
		name    string
		root    string
		exec    bool
		sqlite3 snapshot.Module
		ext     snapshot.Module
	}{
		{"static, _sqlite3 removed", broken, false,
			snapshot.Module{Name: "sqlite3", Kind: "package", Status: "broken", Error: "No module named '_sqlite3'"},
			snapshot.Module{Name: "_sqlite3", Status: "missing", Error: "No module named '_sqlite3'"}},
		{"executed, _sqlite3 removed", broken, true,
			snapshot.Module{Name: "sqlite3", Kind: "package", Status: "import-error", Error: "No module named '_sqlite3'"},
			snapshot.Module{Name: "_sqlite3", Status: "missing", Error: "No module named '_sqlite3'"}},
		{"static, unmodified", healthy, false,
			snapshot.Module{Name: "sqlite3", Kind: "package", Status: "ok"},
			snapshot.Module{Name: "_sqlite3", Kind: "extension", Status: "ok"}},
		{"executed, unmodified", healthy, true,
			snapshot.Module{Name: "sqlite3", Kind: "package", Status: "ok"},
			snapshot.Module{Name: "_sqlite3", Kind: "extension", Status: "ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt := &source.Tree{Dir: tc.root}
			if tc.exec {
				tgt.Runner = sandbox.NewLocal(tc.root)
			}
			rts := collect(t, tgt, python.Options{})
			if len(rts) != 1 {
				t.Fatalf("found %d runtimes, want 1: %+v", len(rts), rts)
			}
			rt := rts[0]
			if rt.Version != version || rt.Path != "/"+version || rt.Executable != "/"+version+"/bin/python3.7" {
				t.Errorf("runtime = %s at %s (%s), want %s at /%s", rt.Version, rt.Path, rt.Executable, version, version)
			}
			if diff := cmp.Diff(tc.sqlite3, module(t, rt, "sqlite3")); diff != "" {
				t.Errorf("sqlite3 (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.ext, module(t, rt, "_sqlite3")); diff != "" {
				t.Errorf("_sqlite3 (-want +got):\n%s", diff)
			}
			for _, m := range rt.Modules {
				if m.Status != "ok" && m.Name != "sqlite3" && m.Name != "_sqlite3" && m.Status != "missing" {
					t.Errorf("unexpected %s: %+v", m.Name, m)
				}
			}
		})
	}
}

// TestRootFSMissingLibrary makes a root filesystem holding a Python build
// in /usr/local and the libraries ldd names for it, except libsqlite3.
func TestRootFSMissingLibrary(t *testing.T) {
	src := testenv.RequirePython(t, "3.7")
	root := t.TempDir()
	mustCopy(t, src, filepath.Join(root, "usr", "local"))
	libDir := filepath.Join(root, "lib", "x86_64-linux-gnu")
	if err := os.MkdirAll(libDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("lib", filepath.Join(root, "lib64")); err != nil {
		t.Fatal(err)
	}
	exts, _ := filepath.Glob(filepath.Join(src, "lib", "python3.7", "lib-dynload", "*.so"))
	needed := map[string]string{}
	for _, f := range append(exts, filepath.Join(src, "bin", "python3.7")) {
		out, err := exec.Command("ldd", f).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", f, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			fields := strings.Fields(line)
			// "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or the loader.
			if len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "/") {
				needed[fields[0]] = fields[2]
			} else if len(fields) == 2 && strings.HasPrefix(fields[0], "/") {
				needed[filepath.Base(fields[0])] = fields[0]
			}
		}
	}
	for soname, p := range needed {
		if soname == "libsqlite3.so.0" || strings.HasPrefix(soname, "libpython") {
			continue // libpython is the build's own, in /usr/local/lib
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(libDir, soname), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rts := collect(t, &source.Tree{Dir: root, RootFS: true}, python.Options{})
	if len(rts) != 1 || rts[0].Path != "/usr/local" || rts[0].Origin != "source" {
		t.Fatalf("runtimes = %+v, want one at /usr/local from source", rts)
	}
	want := snapshot.Module{Name: "sqlite3", Kind: "package", Status: "broken",
		Error:            "libsqlite3.so.0: cannot open shared object file: No such file or directory",
		MissingLibraries: []string{"libsqlite3.so.0"}}
	if diff := cmp.Diff(want, module(t, rts[0], "sqlite3")); diff != "" {
		t.Errorf("sqlite3 (-want +got):\n%s", diff)
	}
	want.Name, want.Kind = "_sqlite3", "extension"
	if diff := cmp.Diff(want, module(t, rts[0], "_sqlite3")); diff != "" {
		t.Errorf("_sqlite3 (-want +got):\n%s", diff)
	}
	for _, m := range rts[0].Modules {
		if m.Status != "ok" && m.Name != "sqlite3" && m.Name != "_sqlite3" && m.Status != "missing" {
			t.Errorf("unexpected %s: %+v", m.Name, m)
		}
	}
}

// TestAllBuilds scans every pyenv build as one tool folder, statically and
// by running them, and checks versions, counts and health.
func TestAllBuilds(t *testing.T) {
	dir := testenv.PyenvVersions(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range entries {
		if e.IsDir() {
			want = append(want, e.Name())
		}
	}
	for _, mode := range []string{"static", "executed"} {
		t.Run(mode, func(t *testing.T) {
			tgt := &source.Tree{Dir: dir}
			if mode == "executed" {
				tgt.Runner = sandbox.NewLocal(dir)
			}
			start := time.Now()
			rts := collect(t, tgt, python.Options{})
			t.Logf("%d runtimes in %s", len(rts), time.Since(start))
			var got []string
			for _, rt := range rts {
				got = append(got, strings.TrimPrefix(rt.Path, "/"))
				if rt.Version != strings.TrimPrefix(rt.Path, "/") {
					t.Errorf("%s: version %s", rt.Path, rt.Version)
				}
				if rt.Origin != "pyenv" {
					t.Errorf("%s: origin %q, want pyenv", rt.Path, rt.Origin)
				}
				counts := map[string]int{}
				var notOK []string
				for _, m := range rt.Modules {
					counts[m.Status]++
					if m.Status != "ok" {
						notOK = append(notOK, m.Name+"="+m.Status)
					}
				}
				t.Logf("%s: %d modules %v; not ok: %v", rt.Version, len(rt.Modules), counts, notOK)
				if len(rt.Modules) < 250 {
					t.Errorf("%s: only %d modules", rt.Version, len(rt.Modules))
				}
				for _, bad := range []string{"broken", "crash", "timeout"} {
					if counts[bad] > 0 {
						t.Errorf("%s: %d modules %s", rt.Version, counts[bad], bad)
					}
				}
				for _, name := range []string{"os", "sys", "json", "ssl", "sqlite3", "ctypes", "zlib", "decimal"} {
					if m := module(t, rt, name); m.Status != "ok" {
						t.Errorf("%s: %+v", rt.Version, m)
					}
				}
				pip, wsgiref := false, false
				for _, p := range rt.Packages {
					pip = pip || (p.Name == "pip" && p.Version != "")
					wsgiref = wsgiref || (p.Name == "wsgiref" && p.Version == "0.1.2")
				}
				if !pip {
					t.Errorf("%s: no pip among %+v", rt.Version, rt.Packages)
				}
				// 2.7 ships a distribution in the standard library itself.
				if strings.HasPrefix(rt.Version, "2.7") && !wsgiref {
					t.Errorf("%s: no wsgiref 0.1.2 (lib/python2.7/wsgiref.egg-info) among %+v", rt.Version, rt.Packages)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("runtimes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSystemPython finds this machine's Debian python3 under /usr, with
// the distributions in /usr/lib/python3/dist-packages.
func TestSystemPython(t *testing.T) {
	libs, _ := filepath.Glob("/usr/lib/python3.*/os.py")
	testenv.Require(t, len(libs) > 0, "no system python3 on this machine")
	rts := collect(t, &source.Tree{Dir: "/", RootFS: true}, python.Options{}, "/usr")
	var sys *snapshot.Runtime
	for i := range rts {
		if rts[i].Path == "/usr" {
			sys = &rts[i]
		}
	}
	if sys == nil {
		t.Fatalf("no /usr python among %+v", rts)
	}
	out, err := exec.Command(sys.Executable, "-c", "import platform; print(platform.python_version())").Output()
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(string(out)); sys.Version != v {
		t.Errorf("version %s, the interpreter says %s", sys.Version, v)
	}
	if entries, _ := os.ReadDir("/usr/lib/python3/dist-packages"); len(entries) > 0 && len(sys.Packages) == 0 {
		t.Errorf("no distributions found in /usr/lib/python3/dist-packages")
	}
	// Debian ships tkinter in python3-tk but turtle in the standard
	// library package: turtle is really broken without it, and that is the
	// only kind of breakage a pristine system may have.
	missing := map[string]bool{}
	for _, m := range sys.Modules {
		if m.Status == "missing" {
			missing[m.Error] = true
		}
	}
	for _, m := range sys.Modules {
		if m.Status == "broken" && !missing[m.Error] {
			t.Errorf("broken: %+v", m)
		}
	}
	t.Logf("%s %s: %d modules, %d distributions", sys.Path, sys.Version, len(sys.Modules), len(sys.Packages))
}

// TestVersionFromDpkg: Debian's python3.11 without its -dev package has no
// patchlevel.h; the version comes from the dpkg database.
func TestVersionFromDpkg(t *testing.T) {
	libs, _ := filepath.Glob("/usr/lib/python3.*/os.py")
	testenv.Require(t, len(libs) > 0 && fileExists("/var/lib/dpkg/status"), "no Debian system python3 on this machine")
	lib := filepath.Dir(libs[0])
	xy := strings.TrimPrefix(filepath.Base(lib), "python")
	root := t.TempDir()
	mustCopy(t, lib, filepath.Join(root, "usr", "lib", filepath.Base(lib)))
	mustCopy(t, "/var/lib/dpkg/status", filepath.Join(root, "var", "lib", "dpkg", "status"))
	rts := collect(t, &source.Tree{Dir: root, RootFS: true}, python.Options{})
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "python"+xy+"-minimal").Output()
	testenv.Require(t, err == nil, "python%s-minimal not installed: %v", xy, err)
	want, _, _ := strings.Cut(string(out), "-")
	if len(rts) != 1 || rts[0].Version != want {
		t.Fatalf("runtimes = %+v, want one with version %s", rts, want)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
