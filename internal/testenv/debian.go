package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// DebianRootfs returns a tar of a Debian root filesystem that mmdebstrap
// builds (--variant=minbase with pkgs included), cached under
// ~/.cache/imagegate-test/mmdebstrap by suite and package set: the first
// build downloads from Debian's mirror (a minute or two), later runs and
// other packages' tests reuse it. Without root, mmdebstrap (installed with
// apt-get when possible) or the mirror, the test skips, and fails under
// CI=true.
func DebianRootfs(tb testing.TB, suite string, pkgs ...string) string {
	tb.Helper()
	RequireRoot(tb)
	home, err := os.UserHomeDir()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(home, ".cache", "imagegate-test", "mmdebstrap")
	sorted := slices.Sorted(slices.Values(pkgs))
	key := suite + "-minbase"
	if len(sorted) > 0 {
		key += "-" + strings.Join(sorted, "+")
	}
	out := filepath.Join(dir, key+".tar")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		install := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "mmdebstrap")
		install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		_ = install.Run()
	}
	_, err = exec.LookPath("mmdebstrap")
	Require(tb, err == nil, "mmdebstrap not installed (apt-get install mmdebstrap): %v", err)
	conn, err := net.DialTimeout("tcp", "deb.debian.org:80", 5*time.Second)
	Require(tb, err == nil, "Debian's mirror unreachable, cannot build the %s image: %v", key, err)
	conn.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	// A name of its own (mmdebstrap picks the format from the .tar
	// suffix) and a rename: concurrent test runs never see half a file.
	partial := filepath.Join(dir, fmt.Sprintf("%s.%d.partial.tar", key, os.Getpid()))
	args := []string{"--quiet", "--variant=minbase"}
	if len(sorted) > 0 {
		args = append(args, "--include="+strings.Join(sorted, ","))
	}
	if b, err := exec.Command("mmdebstrap", append(args, suite, partial)...).CombinedOutput(); err != nil {
		os.Remove(partial)
		tb.Fatalf("mmdebstrap %s: %v\n%s", key, err, b)
	}
	if err := os.Rename(partial, out); err != nil {
		tb.Fatal(err)
	}
	return out
}
