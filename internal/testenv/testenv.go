// Package testenv is what imagegate's tests share about the machine they
// run on: the services, tools, permissions and data a test needs, and a
// clock the test moves by hand.
//
// A test that needs something this machine lacks skips, except under
// CI=true, where it fails: CI (.ci/run) provides everything, so a skip
// there would hide a gap rather than report one. Skips for -short, or for
// an opt-in that costs a download, are the test's own business.
//
// Only tests import this package; internal/archtest enforces that, and
// that it imports nothing of ours.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CI reports whether the tests run under CI=true, where nothing may skip.
func CI() bool { return os.Getenv("CI") == "true" }

// Require skips tb unless ok, and fails it instead under CI=true. The
// message says what is missing, e.g. "gcc not installed".
func Require(tb testing.TB, ok bool, format string, args ...any) {
	tb.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if CI() {
		tb.Fatalf("%s (CI=true: not skipping)", msg)
		return
	}
	tb.Skip(msg)
}

// RequireRoot is for tests that chown files, chroot or create namespaces.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	Require(tb, os.Geteuid() == 0, "needs root")
}

// RequireTool returns the path of a program on $PATH.
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	Require(tb, err == nil, "%s not installed: %v", name, err)
	return p
}

// RequirePostgres returns the DSN of the test database server in
// IMAGEGATE_TEST_POSTGRES, e.g.
// postgres://imagegate:imagegate@127.0.0.1:5432/imagegate_test?sslmode=disable.
// Tests create their own schemas in it and drop them.
func RequirePostgres(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("IMAGEGATE_TEST_POSTGRES")
	Require(tb, dsn != "", "IMAGEGATE_TEST_POSTGRES not set")
	return dsn
}

// PyenvVersions returns $(pyenv root)/versions, where this machine keeps
// its CPython builds (2.7, 3.6 to 3.13).
func PyenvVersions(tb testing.TB) string {
	tb.Helper()
	dir := PyenvDir()
	_, err := os.Stat(dir)
	Require(tb, err == nil, "no pyenv CPython builds: %v", err)
	return dir
}

// PyenvDir is where PyenvVersions looks, whether or not it exists: for
// test drivers (testscript) whose scripts each state the builds they need.
func PyenvDir() string {
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		if out, err := exec.Command("pyenv", "root").Output(); err == nil {
			root = strings.TrimSpace(string(out))
		}
	}
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".pyenv")
	}
	return filepath.Join(root, "versions")
}

// RequirePython returns the prefix of this machine's pyenv build of
// version: an exact one ("3.12.1"), or the first build of a minor version
// ("3.11"). Its interpreter, bin/pythonX.Y, must be there.
func RequirePython(tb testing.TB, version string) string {
	tb.Helper()
	versions := PyenvVersions(tb)
	home := filepath.Join(versions, version)
	if _, err := os.Stat(home); err != nil {
		if m, _ := filepath.Glob(filepath.Join(versions, version+".*")); len(m) > 0 {
			home = m[0]
		}
	}
	exe := filepath.Join(home, "bin", "python"+minor(filepath.Base(home)))
	_, err := os.Stat(exe)
	Require(tb, err == nil, "no CPython %s build: %v", version, err)
	return home
}

// minor returns "X.Y" of "X.Y.Z".
func minor(version string) string {
	x, rest, _ := strings.Cut(version, ".")
	y, _, _ := strings.Cut(rest, ".")
	return x + "." + y
}

// RequireChromium returns the path of a headless-capable Chromium for the
// browser tests: $IMAGEGATE_CHROMIUM when set, else the first of
// chromium, chromium-browser, google-chrome on $PATH (.ci/run installs
// Debian's chromium).
func RequireChromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("IMAGEGATE_CHROMIUM"); p != "" {
		_, err := os.Stat(p)
		Require(tb, err == nil, "IMAGEGATE_CHROMIUM=%s: %v", p, err)
		if err != nil {
			return ""
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Require(tb, false, "chromium not installed (apt-get install chromium)")
	return ""
}
