package sandbox_test

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/testenv"
)

// copyPython copies a CPython build into root at the same path (its
// RUNPATH and prefix are absolute), leaving out what the test does not
// need (the test suite, IDLE, Tk, site-packages, bytecode caches), and the
// libraries that the interpreter and its extensions, but _tkinter, need.
func copyPython(tb testing.TB, root, home, version string) string {
	tb.Helper()
	mm := version[:strings.LastIndex(version, ".")]
	lib := filepath.Join(home, "lib", "python"+mm)
	skip := map[string]bool{"test": true, "idlelib": true, "tkinter": true, "turtledemo": true,
		"site-packages": true, "__pycache__": true, "config-" + mm + "-x86_64-linux-gnu": true}
	err := filepath.WalkDir(lib, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && skip[d.Name()] {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			copyFile(tb, root, p, p)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	exe := filepath.Join(home, "bin", "python"+mm)
	copyFile(tb, root, exe, exe)
	copyFile(tb, root, filepath.Join(home, "lib", "libpython"+mm+".so.1.0"), filepath.Join(home, "lib", "libpython"+mm+".so.1.0"))
	exts, err := filepath.Glob(filepath.Join(lib, "lib-dynload", "*.so"))
	if err != nil || len(exts) == 0 {
		tb.Fatalf("extensions in %s: %v %v", lib, exts, err)
	}
	// Tk is left out, to show how a missing library looks from inside.
	exts = slices.DeleteFunc(exts, func(p string) bool { return strings.HasPrefix(filepath.Base(p), "_tkinter") })
	for _, l := range libraries(tb, append(exts, exe)...) {
		if !strings.HasPrefix(l, home) {
			copyFile(tb, root, l, l)
		}
	}
	return exe
}

// The Python sweep's real use: an interpreter copied into a root
// filesystem imports its extensions, and their system libraries, from
// inside the sandbox.
func TestChrootPython(t *testing.T) {
	const version = "3.12.1"
	home := testenv.RequirePython(t, version)
	root := mustRootFS(t)
	exe := copyPython(t, root, home, version)
	c := mustChroot(t, root, sandbox.ChrootOptions{})
	before := treeState(t, root)
	tests := []struct {
		name string
		args []string
		want run
	}{
		{
			name: "stdlib extensions import",
			args: []string{"-c", "import sqlite3, ssl, sys; print(sqlite3.sqlite_version_info >= (3,), ssl.OPENSSL_VERSION_INFO >= (1,), sys.version.split()[0])"},
			want: run{stdout: "True True " + version + "\n"},
		},
		{
			name: "bytecode writes stay out of the image",
			args: []string{"-c", "import compileall, sys; sys.exit(0 if compileall.compile_dir('" + filepath.Join(home, "lib", "python3.12", "json") + "', quiet=1) else 1)"},
			want: run{},
		},
		{
			name: "extension whose library is missing in the image",
			args: []string{"-c", "import _tkinter"},
			want: run{res: sandbox.Result{ExitCode: 1}, stderr: "ImportError: libtk8.6.so: cannot open shared object file: No such file or directory\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCmd(t, c, sandbox.Command{Path: exe, Args: tt.args})
			if lines := strings.SplitAfter(got.stderr, "\n"); len(lines) > 2 {
				got.stderr = lines[len(lines)-2] // the exception, without the traceback
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
				t.Errorf("Run() mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff(before, treeState(t, root)); diff != "" {
		t.Errorf("root changed by the runs (-before +after):\n%s", diff)
	}
}
