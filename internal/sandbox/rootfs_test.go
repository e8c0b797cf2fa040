package sandbox_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/source"
)

var (
	_ source.Runner = (*sandbox.Local)(nil)
	_ source.Runner = (*sandbox.Chroot)(nil)
)

// lddLine matches "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
// and "/lib64/ld-linux-x86-64.so.2 (0x...)".
var lddLine = regexp.MustCompile(`(?:=>\s+)?(/\S+)\s+\(0x`)

// libraries returns the shared libraries, loader included, that ldd says
// the given files need.
func libraries(tb testing.TB, files ...string) []string {
	tb.Helper()
	out, err := exec.Command("ldd", files...).Output()
	if err != nil {
		tb.Fatalf("ldd %v: %v", files, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := lddLine.FindStringSubmatch(sc.Text()); m != nil {
			libs = append(libs, m[1])
		}
	}
	return libs
}

// copyFile copies the file src resolves to into root at the path dst,
// creating parent directories.
func copyFile(tb testing.TB, root, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(root, dst)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
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

// mustRootFS builds a tiny root filesystem from this machine's dash, cat, rm, mkdir,
// ls and sleep with the libraries they need, plus extra files copied from
// the host at the same paths. /bin/sh is an absolute link, as in real
// images, so running it exercises resolution inside the root.
func mustRootFS(tb testing.TB, extra ...string) string {
	tb.Helper()
	root := tb.TempDir()
	progs := []string{"/usr/bin/dash", "/usr/bin/cat", "/usr/bin/ls", "/usr/bin/sleep", "/usr/bin/rm", "/usr/bin/mkdir"}
	for _, f := range append(append(progs, extra...), libraries(tb, progs...)...) {
		copyFile(tb, root, f, f)
	}
	for link, to := range map[string]string{"bin": "usr/bin", "usr/bin/sh": "/usr/bin/dash"} {
		if err := os.Symlink(to, filepath.Join(root, link)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		tb.Fatal(err)
	}
	return root
}

// treeState lists every path under root with its type, size, mode and
// modification time, to show that a run left root untouched.
func treeState(tb testing.TB, root string) string {
	tb.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s %d %s\n", p, fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

// processesWithArg lists this machine's processes whose command line has
// arg, to show nothing survived a run.
func processesWithArg(tb testing.TB, arg string) []string {
	tb.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		tb.Fatal(err)
	}
	var found []string
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		for a := range bytes.SplitSeq(b, []byte{0}) {
			if string(a) == arg {
				found = append(found, p+": "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	}
	return found
}

// eventuallyNoProcesses waits briefly for killed processes to be reaped by
// their parents (the kernel does so asynchronously) and fails if any
// process with arg remains.
func eventuallyNoProcesses(tb testing.TB, arg string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processesWithArg(tb, arg)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("processes left behind: %q", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run is one Runner call with captured output.
type run struct {
	res            sandbox.Result
	err            error
	stdout, stderr string
}

func runCmd(tb testing.TB, r source.Runner, cmd sandbox.Command) run {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res, err := r.Run(context.Background(), cmd)
	return run{res, err, stdout.String(), stderr.String()}
}

// errorsEqual compares errors by message, the part users read.
func errorsEqual(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}
