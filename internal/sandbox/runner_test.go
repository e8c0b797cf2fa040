package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/source"
)

// runnerSuite is the contract every source.Runner keeps whatever isolates
// it, as restic's backend test.Suite is for backends: each runner passes
// the same tests on a root filesystem from mustRootFS, and only what one
// runner adds (namespaces, limits, tool folders) is tested on its own.
type runnerSuite struct {
	// New returns the runner under test for root.
	New func(tb testing.TB, root string) source.Runner
	// Mode is what the runner's Mode says.
	Mode string
	// Seen maps a path in the image to the path its programs see: the
	// same inside a chroot; under root for Local, which runs them on this
	// machine.
	Seen func(root, p string) string
}

func (s runnerSuite) Run(t *testing.T) {
	t.Run("Run", s.testRun)
	t.Run("CannotStart", s.testCannotStart)
	t.Run("KillsEverything", s.testKillsEverything)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("UserAndSteps", s.testUserAndSteps)
}

// testUserAndSteps: a program runs as the user given, and its set-up runs
// first in the same place (what it writes, the program reads) while the
// output of set-up and tear-down reaches no one.
func (s runnerSuite) testUserAndSteps(t *testing.T) {
	root := mustRootFS(t)
	r := s.New(t, root)
	// Local runs the image's files where they are: the user must reach
	// them through the test's temporary directories.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Set-up runs as the user too: it needs a directory it may write.
	if err := os.Mkdir(filepath.Join(root, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "shared"), 0o1777); err != nil {
		t.Fatal(err)
	}
	made := s.Seen(root, "/shared/made-by-set-up")
	got := runCmd(t, r, sandbox.Command{
		Path: "/bin/sh", Args: []string{"-c", "cat " + made + "; while read k v rest; do [ $k = Uid: ] && echo uid $v; done </proc/self/status; true"},
		User:   &sandbox.Credential{UID: 1000, GID: 1000},
		Before: [][]string{{"/bin/sh", "-c", "echo set-up > " + made + "; echo noise"}},
		After:  [][]string{{"/bin/sh", "-c", "echo tear-down; exit 4"}},
	})
	want := run{stdout: "set-up\nuid 1000\n"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
		t.Errorf("Run() mismatch (-want +got):\n%s", diff)
	}
	_, err := r.Run(context.Background(), sandbox.Command{Path: "/bin/sh", Before: [][]string{{"/usr/bin/missing"}}})
	if err == nil {
		t.Errorf("a set-up program that is missing: Run() = nil error, want one")
	}
}

func (s runnerSuite) testRun(t *testing.T) {
	root := mustRootFS(t)
	r := s.New(t, root)
	if r.Mode() != s.Mode {
		t.Errorf("Mode() = %q, want %q", r.Mode(), s.Mode)
	}
	sh := func(script string) sandbox.Command {
		return sandbox.Command{Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"PATH=/usr/bin"}}
	}
	cat := func(p string) sandbox.Command {
		return sandbox.Command{Path: "/bin/cat", Args: []string{s.Seen(root, p)}}
	}
	withEnv := func(cmd sandbox.Command, env ...string) sandbox.Command { cmd.Env = env; return cmd }
	withCap := func(cmd sandbox.Command, n int64) sandbox.Command { cmd.MaxOutput = n; return cmd }
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
			name: "environment exactly as given, in order",
			cmd:  withEnv(sandbox.Command{Path: "/bin/cat", Args: []string{"/proc/self/environ"}}, "B=2", "A=1", "PATH=/usr/bin"),
			want: run{stdout: "B=2\x00A=1\x00PATH=/usr/bin\x00"},
		},
		{
			name: "empty environment",
			cmd:  sandbox.Command{Path: "/bin/cat", Args: []string{"/proc/self/environ"}},
			want: run{},
		},
		{
			name: "argv[0] is the name called, links resolved inside the root",
			cmd:  sandbox.Command{Path: "/bin/cat", Args: []string{"/proc/self/cmdline"}}, // bin is a link to usr/bin
			want: run{stdout: s.Seen(root, "/bin/cat") + "\x00/proc/self/cmdline\x00"},
		},
		{
			name: "default working directory is the root",
			cmd:  sh("pwd"),
			want: run{stdout: s.Seen(root, "/") + "\n"},
		},
		{
			name: "working directory",
			cmd:  sandbox.Command{Path: "/bin/sh", Args: []string{"-c", "pwd"}, Dir: "/usr/bin"},
			want: run{stdout: s.Seen(root, "/usr/bin") + "\n"},
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
			cmd:  withCap(cat("/usr/bin/dash"), 4),
			want: run{stdout: "\x7fELF"},
		},
		{
			name: "output cap beyond the ELF magic",
			cmd:  withCap(cat("/usr/bin/ls"), 10),
			want: run{stdout: "\x7fELF\x02\x01\x01\x00\x00\x00"},
		},
		{
			name: "output beyond the default cap is discarded without blocking",
			cmd:  sh("i=0; while [ $i -lt 12 ]; do cat " + strings.Repeat(s.Seen(root, "/usr/bin/dash")+" ", 3) + "; i=$((i+1)); done >&2; echo done"),
			want: run{stdout: "done\n", stderr: "(1 MiB)"},
		},
	}
	before := treeState(t, root)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCmd(t, r, tt.cmd)
			if tt.want.stderr == "(1 MiB)" && len(got.stderr) == sandbox.DefaultMaxOutput {
				got.stderr = "(1 MiB)"
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

func (s runnerSuite) testCannotStart(t *testing.T) {
	root := mustRootFS(t)
	if err := os.WriteFile(filepath.Join(root, "usr/bin/noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A link whose target is a program on this machine but not in the image.
	host, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(root, "usr/bin/escape")); err != nil {
		t.Fatal(err)
	}
	r := s.New(t, root)
	tests := []struct {
		cmd      sandbox.Command
		notFound bool
		message  string
	}{
		{sandbox.Command{Path: "/bin/python3"}, true, "run /bin/python3 in " + root + ": not found in the image"},
		{sandbox.Command{Path: "/usr/bin/escape"}, true, "run /usr/bin/escape in " + root + ": not found in the image"},
		{sandbox.Command{Path: "/bin"}, false, "run /bin in " + root + ": is a directory"},
		{sandbox.Command{Path: "/usr/bin/noexec"}, false, "run /usr/bin/noexec in " + root + ": not executable (mode -rw-r--r--)"},
		{sandbox.Command{Path: "/bin/cat", Dir: "/nowhere"}, true, "run /bin/cat: working directory /nowhere: not found in the image"},
		{sandbox.Command{Path: "bin/cat"}, false, `run "bin/cat": program path must be absolute inside the image`},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.Path, func(t *testing.T) {
			_, err := r.Run(context.Background(), tt.cmd)
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

// testKillsEverything: nothing a program started outlives its run, whether
// it timed out or exited. The sleeps are told apart from other runs of
// these tests on this machine by a marker holding this process's ID.
func (s runnerSuite) testKillsEverything(t *testing.T) {
	r := s.New(t, mustRootFS(t))
	marker := func(n int) string { return fmt.Sprintf("%d.%d", n, os.Getpid()) }
	background := func(cmd sandbox.Command, m, script string) sandbox.Command {
		cmd.Path, cmd.Args, cmd.Env = "/bin/sh", []string{"-c", strings.ReplaceAll(script, "M", m)}, []string{"PATH=/usr/bin"}
		return cmd
	}
	killed := run{res: sandbox.Result{ExitCode: -1, Signal: "killed", TimedOut: true}}
	tests := []struct {
		name   string
		marker string
		cmd    sandbox.Command
		ctx    func() (context.Context, context.CancelFunc)
		want   run
	}{
		{
			name:   "on Timeout",
			marker: marker(985),
			cmd:    background(sandbox.Command{Timeout: 300 * time.Millisecond}, marker(985), "sleep M & sleep M"),
			want:   killed,
		},
		{
			name:   "on the context's deadline",
			marker: marker(987),
			cmd:    background(sandbox.Command{}, marker(987), "sleep M & sleep M"),
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			want: killed,
		},
		{
			name:   "after exit, the background holding stdout",
			marker: marker(984),
			cmd:    background(sandbox.Command{Timeout: time.Minute}, marker(984), "sleep M & echo started"),
			want:   run{stdout: "started\n"},
		},
		{
			name:   "after exit",
			marker: marker(986),
			cmd:    background(sandbox.Command{Timeout: time.Minute}, marker(986), "sleep M > /dev/null & echo started"),
			want:   run{stdout: "started\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			var stdout, stderr strings.Builder
			cmd := tt.cmd
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			res, err := r.Run(ctx, cmd)
			got := run{res, err, stdout.String(), stderr.String()}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
				t.Errorf("Run() mismatch (-want +got):\n%s", diff)
			}
			eventuallyNoProcesses(t, tt.marker)
		})
	}
}

// testConcurrent: runners must be safe for concurrent use, each run with
// its own environment and streams.
func (s runnerSuite) testConcurrent(t *testing.T) {
	r := s.New(t, mustRootFS(t))
	const n = 12
	got := make([]run, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i] = runCmd(t, r, sandbox.Command{
				Path: "/bin/sh", Args: []string{"-c", "echo $N; echo $N >&2"},
				Env: []string{"N=" + strconv.Itoa(i)}, Timeout: time.Minute,
			})
		})
	}
	wg.Wait()
	for i, g := range got {
		want := run{stdout: fmt.Sprintf("%d\n", i), stderr: fmt.Sprintf("%d\n", i)}
		if diff := cmp.Diff(want, g, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
			t.Errorf("run %d mismatch (-want +got):\n%s", i, diff)
		}
	}
}

func TestLocalRunner(t *testing.T) {
	runnerSuite{
		New:  func(_ testing.TB, root string) source.Runner { return sandbox.NewLocal(root) },
		Mode: "local",
		Seen: func(root, p string) string { return filepath.Join(root, p) },
	}.Run(t)
}

func TestChrootRunner(t *testing.T) {
	runnerSuite{
		New: func(tb testing.TB, root string) source.Runner {
			return mustChroot(tb, root, sandbox.ChrootOptions{})
		},
		Mode: "chroot",
		Seen: func(_, p string) string { return p },
	}.Run(t)
}
