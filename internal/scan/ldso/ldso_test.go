package ldso_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/testenv"
)

// mustCC builds a shared object with gcc without libc, so that the only
// dependencies are the ones a test names.
func mustCC(t *testing.T, out, soname string, args ...string) {
	t.Helper()
	testenv.RequireTool(t, "gcc")
	src := filepath.Join(t.TempDir(), "x.c")
	if err := os.WriteFile(src, []byte("int "+strings.NewReplacer(".", "_", "-", "_", "$", "_", "/", "_").Replace(soname)+"(void) { return 1; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gcc", append([]string{"-shared", "-fPIC", "-nostdlib", "-o", out, "-Wl,-soname," + soname, "-Wl,--no-as-needed", src}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
}

func mustWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mustForeignELF builds a 32-bit x86 executable: a real ELF file that the
// loader of a 64-bit program must pass over even when its name matches.
func mustForeignELF(t *testing.T, out string) {
	t.Helper()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "go.mod"), "module foreign\n\ngo 1.21\n")
	mustWrite(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build GOARCH=386: %v\n%s", err, b)
	}
}

func TestMissing(t *testing.T) {
	root := t.TempDir()
	j := func(p string) string { return filepath.Join(root, p) }
	// The dependency everything needs, in several places.
	mustCC(t, j("opt/deps/libdep.so.1"), "libdep.so.1")
	mustCC(t, j("app/lib/libdep.so.1"), "libdep.so.1")
	mustCC(t, j("opt/conf/libconf.so.1"), "libconf.so.1")
	mustCC(t, j("usr/lib/x86_64-linux-gnu/libdefault.so.1"), "libdefault.so.1")
	mustCC(t, j("usr/lib/libmulti.so.1"), "libmulti.so.1")
	mustForeignELF(t, j("lib/x86_64-linux-gnu/libmulti.so.1"))
	mustForeignELF(t, j("lib/x86_64-linux-gnu/libforeign.so.1"))
	// libmid needs libdep but says nothing about where it is.
	mustCC(t, j("opt/mid/libmid.so.1"), "libmid.so.1", "-L"+j("opt/deps"), "-l:libdep.so.1")
	// An absolute link inside the image; on the host /opt/linked does not exist.
	if err := os.Symlink("/opt/conf", j("opt/linked")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, j("etc/ld.so.conf"), "# comment\ninclude /etc/ld.so.conf.d/*.conf\n")
	mustWrite(t, j("etc/ld.so.conf.d/a.conf"), "/opt/linked\n")
	mustWrite(t, j("etc/ld.so.conf.d/b.conf"), "include ../ld.so.conf\n") // a cycle must not hang

	mustCC(t, j("app/lib/libdollar.so.1"), "$ORIGIN/../lib/libdollar.so.1")
	outside := t.TempDir() // a 64-bit libforeign to link against, not in the image
	mustCC(t, filepath.Join(outside, "libforeign.so.1"), "libforeign.so.1")
	link := func(name string, args ...string) string {
		out := j("bin/" + name)
		mustCC(t, out, name, args...)
		return out
	}
	for _, tc := range []struct {
		name   string
		file   string
		origin string
		want   []string
	}{
		{"rpath of the loader is inherited",
			link("rpath-exe", "-L"+j("opt/mid"), "-l:libmid.so.1", "-Wl,--disable-new-dtags,-rpath,/opt/mid:/opt/deps"), "/bin", nil},
		{"runpath is not inherited",
			link("runpath-exe", "-L"+j("opt/mid"), "-l:libmid.so.1", "-Wl,--enable-new-dtags,-rpath,/opt/mid:/opt/deps"), "/bin", []string{"libdep.so.1"}},
		{"$ORIGIN relative to the given origin",
			link("origin-exe", "-L"+j("app/lib"), "-l:libdep.so.1", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"), "/app/bin", nil},
		{"${ORIGIN} elsewhere misses",
			link("origin2-exe", "-L"+j("app/lib"), "-l:libdep.so.1", "-Wl,--enable-new-dtags,-rpath,${ORIGIN}/../lib"), "/bin", []string{"libdep.so.1"}},
		{"$ORIGIN in DT_NEEDED",
			link("needed-origin-exe", "-L"+j("app/lib"), "-l:libdollar.so.1"), "/app/bin", nil},
		{"$ORIGIN in DT_NEEDED elsewhere misses",
			link("needed-origin2-exe", "-L"+j("app/lib"), "-l:libdollar.so.1"), "/bin", []string{"$ORIGIN/../lib/libdollar.so.1"}},
		{"ld.so.conf include through an in-root link",
			link("conf-exe", "-L"+j("opt/conf"), "-l:libconf.so.1"), "/bin", nil},
		{"default multiarch dir",
			link("default-exe", "-L"+j("usr/lib/x86_64-linux-gnu"), "-l:libdefault.so.1"), "/bin", nil},
		{"32-bit namesake skipped, 64-bit found later",
			link("multi-exe", "-L"+j("usr/lib"), "-l:libmulti.so.1"), "/bin", nil},
		{"only a 32-bit namesake",
			link("foreign-exe", "-L"+outside, "-l:libforeign.so.1"), "/bin", []string{"libforeign.so.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ldso.NewResolver(context.Background(), root)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Missing(tc.file, tc.origin)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Missing (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("conf dirs", func(t *testing.T) {
		r, err := ldso.NewResolver(context.Background(), root)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"/opt/linked"}, r.ConfDirs()); diff != "" {
			t.Errorf("ConfDirs (-want +got):\n%s", diff)
		}
	})
}

// TestHostPython checks a real extension against this machine's own
// libraries: everything resolves, and taking the root away loses them.
func TestHostPython(t *testing.T) {
	exts, _ := filepath.Glob("/usr/lib/python3*/lib-dynload/_sqlite3*.so")
	testenv.Require(t, len(exts) > 0, "no system Python with _sqlite3 on this machine")
	r, err := ldso.NewResolver(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Missing(exts[0], filepath.Dir(exts[0]))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("Missing(%s) = %v, want nothing missing", exts[0], got)
	}
	empty, err := ldso.NewResolver(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got, err = empty.Missing(exts[0], "/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"libsqlite3.so.0", "libc.so.6"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Missing in an empty root (-want +got):\n%s", diff)
	}
}

func TestNotELF(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.so")
	mustWrite(t, p, "#!/bin/sh\n")
	r, err := ldso.NewResolver(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Missing(p, "/"); err == nil {
		t.Error("Missing on a shell script: want an error")
	}
}

func FuzzReadObject(f *testing.F) {
	for _, p := range []string{"/usr/lib/x86_64-linux-gnu/libdl.so.2"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ldso.ReadObject(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, n := range append(o.Needed, o.RunPath...) {
			if n == "" {
				t.Errorf("empty name in %+v", o)
			}
		}
	})
}
