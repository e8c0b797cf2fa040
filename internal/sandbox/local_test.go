package sandbox_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func TestLocal(t *testing.T) {
	root := mustToolFolder(t)
	l := sandbox.NewLocal(root)
	sh := func(script string) sandbox.Command {
		return sandbox.Command{Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"PATH=/usr/bin"}}
	}
	tests := []struct {
		name string
		cmd  sandbox.Command
		want run
	}{
		{
			name: "output and exit code",
			cmd:  sh("echo out; echo err >&2; exit 3"),
			want: run{res: sandbox.Result{ExitCode: 3}, stdout: "out\n", stderr: "err\n"},
		},
		{
			name: "environment exactly as given",
			cmd:  sandbox.Command{Path: "/bin/cat", Args: []string{"/proc/self/environ"}, Env: []string{"B=2", "A=1"}},
			want: run{stdout: "B=2\x00A=1\x00"},
		},
		{
			name: "empty environment",
			cmd:  sandbox.Command{Path: "/bin/cat", Args: []string{"/proc/self/environ"}},
			want: run{},
		},
		{
			name: "argv[0] is the name called, links resolved inside the folder",
			cmd:  sandbox.Command{Path: "/bin/alias-cat", Args: []string{"/proc/self/cmdline"}},
			want: run{stdout: root + "/bin/alias-cat\x00/proc/self/cmdline\x00"},
		},
		{
			name: "default working directory is the folder",
			cmd:  sh("pwd"),
			want: run{stdout: root + "\n"},
		},
		{
			name: "working directory inside the folder",
			cmd:  sandbox.Command{Path: "/bin/sh", Args: []string{"-c", "pwd"}, Dir: "/bin"},
			want: run{stdout: root + "/bin\n"},
		},
		{
			name: "stdin",
			cmd:  sandbox.Command{Path: "/bin/cat", Stdin: strings.NewReader("from stdin")},
			want: run{stdout: "from stdin"},
		},
		{
			name: "crash reported as signal",
			cmd:  sh("kill -SEGV $$"),
			want: run{res: sandbox.Result{ExitCode: -1, Signal: "segmentation fault"}},
		},
		{
			name: "output cap",
			cmd:  sandbox.Command{Path: "/bin/cat", Args: []string{"/usr/bin/dash"}, MaxOutput: 4},
			want: run{stdout: "\x7fELF"},
		},
		{
			name: "output beyond the default cap is discarded without blocking",
			cmd:  sh("i=0; while [ $i -lt 12 ]; do cat /usr/bin/dash /usr/bin/dash /usr/bin/dash; i=$((i+1)); done >&2; echo done"),
			want: run{stdout: "done\n", stderr: "(1 MiB)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCmd(t, l, tt.cmd)
			if tt.want.stderr == "(1 MiB)" && len(got.stderr) == sandbox.DefaultMaxOutput {
				got.stderr = "(1 MiB)"
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
				t.Errorf("Run() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLocalCannotStart(t *testing.T) {
	root := mustToolFolder(t)
	l := sandbox.NewLocal(root)
	tests := []struct {
		cmd      sandbox.Command
		notFound bool
		message  string
	}{
		{sandbox.Command{Path: "/bin/python3"}, true, "run /bin/python3 in " + root + ": not found in the image"},
		{sandbox.Command{Path: "/bin/escape"}, true, "run /bin/escape in " + root + ": not found in the image"},
		{sandbox.Command{Path: "/bin"}, false, "run /bin in " + root + ": is a directory"},
		{sandbox.Command{Path: "/bin/cat", Dir: "/nowhere"}, true, "run /bin/cat: working directory /nowhere: not found in the image"},
		{sandbox.Command{Path: "bin/cat"}, false, `run "bin/cat": program path must be absolute inside the image`},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.Path, func(t *testing.T) {
			_, err := l.Run(context.Background(), tt.cmd)
			if err == nil {
				t.Fatal("Run() succeeded, want an error")
			}
			if got := errors.Is(err, sandbox.ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.notFound)
			}
			if err.Error() != tt.message {
				t.Errorf("Run() error = %q, want %q", err, tt.message)
			}
		})
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

func TestLocalKillsProcessGroup(t *testing.T) {
	l := sandbox.NewLocal(mustToolFolder(t))
	tests := []struct {
		name   string
		marker string
		script string
		cmd    sandbox.Command
		want   run
	}{
		{
			name:   "on timeout",
			marker: "985.0123",
			script: "sleep 985.0123 & sleep 985.0123",
			cmd:    sandbox.Command{Timeout: 300 * time.Millisecond},
			want:   run{res: sandbox.Result{ExitCode: -1, Signal: "killed", TimedOut: true}},
		},
		{
			name:   "after exit",
			marker: "984.0123",
			script: "sleep 984.0123 & echo started",
			cmd:    sandbox.Command{Timeout: time.Minute},
			want:   run{stdout: "started\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := tt.cmd
			cmd.Path, cmd.Args, cmd.Env = "/bin/sh", []string{"-c", tt.script}, []string{"PATH=/usr/bin"}
			got := runCmd(t, l, cmd)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
				t.Errorf("Run() mismatch (-want +got):\n%s", diff)
			}
			eventuallyNoProcesses(t, tt.marker)
		})
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
