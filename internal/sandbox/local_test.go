package sandbox_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sandbox"
)

// mustToolFolder builds a tool folder such as a hosted tool cache: programs
// built for this machine (copies of its dash and cat), and links that must
// resolve inside the folder, never on the host.
func mustToolFolder(tb testing.TB) string {
	tb.Helper()
	root := tb.TempDir()
	copyFile(tb, root, "/usr/bin/dash", "/bin/sh")
	copyFile(tb, root, "/usr/bin/cat", "/bin/cat")
	for link, to := range map[string]string{
		"bin/alias-cat": "/bin/cat",     // absolute, inside the folder
		"bin/escape":    "/usr/bin/cat", // exists on the host only
	} {
		if err := os.Symlink(to, filepath.Join(root, link)); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

// TestLocalToolFolder: Local's own use, a folder of programs built for
// this machine rather than a root filesystem; what every runner does is
// in runnerSuite.
func TestLocalToolFolder(t *testing.T) {
	root := mustToolFolder(t)
	l := sandbox.NewLocal(root)
	got := runCmd(t, l, sandbox.Command{Path: "/bin/alias-cat", Args: []string{"/proc/self/cmdline"}})
	want := run{stdout: root + "/bin/alias-cat\x00/proc/self/cmdline\x00"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
		t.Errorf("argv[0] is the name called, links resolved inside the folder: Run() mismatch (-want +got):\n%s", diff)
	}
	_, err := l.Run(context.Background(), sandbox.Command{Path: "/bin/escape"})
	if !errors.Is(err, sandbox.ErrNotFound) || err.Error() != "run /bin/escape in "+root+": not found in the image" {
		t.Errorf("Run(/bin/escape) error = %v, want it not found in the image: the link's target is on the host only", err)
	}
}

// The host as a root: paths are the host's own.
func TestLocalHost(t *testing.T) {
	l := sandbox.NewLocal("/")
	got := runCmd(t, l, sandbox.Command{Path: "/usr/bin/cat", Args: []string{"/proc/self/cmdline"}, Dir: "/usr"})
	want := run{stdout: "/usr/bin/cat\x00/proc/self/cmdline\x00"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
		t.Errorf("Run() mismatch (-want +got):\n%s", diff)
	}
	if l.Mode() != "local" {
		t.Errorf("Mode() = %q, want local", l.Mode())
	}
}

func BenchmarkLocalRun(b *testing.B) {
	l := sandbox.NewLocal("/")
	cmd := sandbox.Command{Path: "/usr/bin/cat"}
	for b.Loop() {
		if _, err := l.Run(context.Background(), cmd); err != nil {
			b.Fatal(err)
		}
	}
}
