package sandbox_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/testenv"
)

func mustChroot(tb testing.TB, root string, opts sandbox.ChrootOptions) *sandbox.Chroot {
	tb.Helper()
	testenv.RequireRoot(tb)
	c, err := sandbox.NewChroot(root, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestPermitted(t *testing.T) {
	testenv.RequireRoot(t)
	if err := sandbox.Permitted(); err != nil {
		t.Fatalf("Permitted() as root = %v", err)
	}
}

// Without root, Permitted says what to do. The test runs a copy of this
// test binary as nobody.
func TestPermittedAsNobody(t *testing.T) {
	testenv.RequireRoot(t)
	dir, err := os.MkdirTemp("", "sandbox-nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "sandbox.test")
	copyFile(t, "/", os.Args[0], bin)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"SANDBOX_HELPER_PERMITTED=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	want := "chroot execution needs root or CAP_SYS_ADMIN to create namespaces; run as root, or use --exec none"
	if string(out) != want {
		t.Errorf("Permitted() as nobody = %q, want %q", out, want)
	}
}

// TestChroot is what Chroot isolates beyond runnerSuite's contract.
func TestChroot(t *testing.T) {
	root := mustRootFS(t)
	if err := os.WriteFile(filepath.Join(root, "usr/bin/broken"), []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := mustChroot(t, root, sandbox.ChrootOptions{})
	sh := func(script string) sandbox.Command {
		return sandbox.Command{Path: "/bin/sh", Args: []string{"-c", script}}
	}
	withEnv := func(cmd sandbox.Command, env ...string) sandbox.Command { cmd.Env = env; return cmd }
	tests := []struct {
		name string
		cmd  sandbox.Command
		want run
	}{
		{
			name: "program has a low PID in a PID namespace of its own",
			cmd:  sh("[ $$ -gt 1 ] && [ $$ -lt 64 ] && echo low"),
			want: run{stdout: "low\n"},
		},
		{
			name: "proc shows only the sandbox's init and the program",
			cmd:  sh("n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n"),
			want: run{stdout: "2\n"},
		},
		{
			name: "network has only loopback",
			cmd:  sandbox.Command{Path: "/usr/bin/cat", Args: []string{"/proc/net/dev"}},
			want: run{stdout: "lo"}, // interface names, see below
		},
		{
			name: "hostname isolated",
			cmd:  sandbox.Command{Path: "/usr/bin/cat", Args: []string{"/proc/sys/kernel/hostname"}},
			want: run{stdout: "imagegate\n"},
		},
		{
			name: "writes stay inside",
			cmd:  withEnv(sh("echo x > /etc/x && echo y > /tmp/x && mkdir /new && cat /etc/x /tmp/x && rm /usr/bin/cat && ! cat /etc/x"), "PATH=/usr/bin"),
			want: run{res: sandbox.Result{ExitCode: 0}, stdout: "x\ny\n", stderr: "/bin/sh: 1: cat: not found\n"},
		},
		{
			name: "tmp starts empty and dev is minimal",
			cmd:  sandbox.Command{Path: "/usr/bin/ls", Args: []string{"-A", "/tmp", "/dev"}},
			want: run{stdout: "/dev:\ncore\nfd\nfull\nnull\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n\n/tmp:\n"},
		},
		{
			name: "bounding set is Docker's default",
			cmd:  sh("while read k v; do [ $k = CapBnd: ] && echo $v; done < /proc/self/status; true"),
			want: run{stdout: "00000000a80425fb\n"},
		},
		{
			name: "file size limit",
			cmd:  sh("ulimit -f; ulimit -n"),
			want: run{stdout: "524288\n4096\n"},
		},
	}
	before := treeState(t, root)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCmd(t, c, tt.cmd)
			if tt.name == "network has only loopback" {
				got.stdout = interfaces(got.stdout)
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

// interfaces extracts interface names from /proc/net/dev.
func interfaces(procNetDev string) string {
	var names []string
	for line := range strings.Lines(procNetDev) {
		if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") {
			names = append(names, strings.TrimSpace(name))
		}
	}
	return strings.Join(names, ",")
}

func TestChrootCannotStart(t *testing.T) {
	root := mustRootFS(t)
	if err := os.WriteFile(filepath.Join(root, "usr/bin/script"), []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := mustChroot(t, root, sandbox.ChrootOptions{})
	tests := []struct {
		cmd      sandbox.Command
		notFound bool
		message  string
	}{
		{sandbox.Command{Path: "/usr/bin/script"}, true, "run /usr/bin/script in " + root + ": cannot execute: its interpreter (ELF loader or #! line) is not found in the image"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.Path, func(t *testing.T) {
			_, err := c.Run(context.Background(), tt.cmd)
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

func TestChrootOptions(t *testing.T) {
	root := mustRootFS(t)
	c := mustChroot(t, root, sandbox.ChrootOptions{Hostname: "probe", MaxOpenFiles: 64, MaxFileSize: 4096})
	got := runCmd(t, c, sandbox.Command{Path: "/bin/sh", Args: []string{"-c", "cat /proc/sys/kernel/hostname; ulimit -n; ulimit -f; echo 0123456789 > /tmp/small; exec cat /usr/bin/ls > /tmp/big"}})
	want := run{res: sandbox.Result{ExitCode: -1, Signal: "file size limit exceeded"}, stdout: "probe\n64\n8\n"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
		t.Errorf("Run() mismatch (-want +got):\n%s", diff)
	}
}

func TestChrootConcurrent(t *testing.T) {
	root := mustRootFS(t)
	c := mustChroot(t, root, sandbox.ChrootOptions{})
	const n = 12
	got := make([]run, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i] = runCmd(t, c, sandbox.Command{
				Path: "/bin/sh", Args: []string{"-c", "echo $N > /tmp/n; echo $N > /etc/n; cat /tmp/n /etc/n"},
				Env: []string{"N=" + strconv.Itoa(i)}, Timeout: time.Minute,
			})
		})
	}
	wg.Wait()
	for i, g := range got {
		want := run{stdout: fmt.Sprintf("%d\n%d\n", i, i)}
		if diff := cmp.Diff(want, g, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
			t.Errorf("run %d mismatch (-want +got):\n%s", i, diff)
		}
	}
}

func TestNewChrootNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{f, filepath.Join(t.TempDir(), "missing")} {
		if _, err := sandbox.NewChroot(root, sandbox.ChrootOptions{}); err == nil {
			t.Errorf("NewChroot(%s) succeeded, want an error", root)
		}
	}
}

func BenchmarkChrootRun(b *testing.B) {
	root := mustRootFS(b)
	c := mustChroot(b, root, sandbox.ChrootOptions{})
	cmd := sandbox.Command{Path: "/usr/bin/cat"} // reads an empty stdin
	for b.Loop() {
		if _, err := c.Run(context.Background(), cmd); err != nil {
			b.Fatal(err)
		}
	}
}

// When imagegate itself dies (kill -9, a crash), its sandboxes die with it.
// The test runs a copy of this test binary that starts a sandboxed program
// and is then killed.
func TestChrootDiesWithImagegate(t *testing.T) {
	root := mustRootFS(t)
	testenv.RequireRoot(t)
	const marker = "983.0123"
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), "SANDBOX_HELPER_ROOT="+root, "SANDBOX_HELPER_MARKER="+marker)
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		helper.Process.Kill()
		t.Fatalf("helper said %q, %v", line, err)
	}
	for start := time.Now(); len(processesWithArg(t, marker)) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			helper.Process.Kill()
			t.Fatal("sandboxed sleeps not running before the kill; the test would prove nothing")
		}
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	eventuallyNoProcesses(t, marker)
}

// chrootHelper is the sandboxed side of TestChrootDiesWithImagegate, run
// from TestMain in the copy of the test binary.
func chrootHelper(root, marker string) int {
	c, err := sandbox.NewChroot(root, sandbox.ChrootOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, err = c.Run(context.Background(), sandbox.Command{
		Path:   "/bin/sh",
		Args:   []string{"-c", "sleep " + marker + " & echo ready; sleep " + marker},
		Stdout: os.Stdout,
	})
	fmt.Fprintf(os.Stderr, "helper not killed: %v\n", err)
	return 1
}

func TestMain(m *testing.M) {
	if root := os.Getenv("SANDBOX_HELPER_ROOT"); root != "" {
		os.Exit(chrootHelper(root, os.Getenv("SANDBOX_HELPER_MARKER")))
	}
	if os.Getenv("SANDBOX_HELPER_PERMITTED") != "" {
		fmt.Print(sandbox.Permitted())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestChrootHosts: an image without /etc/hosts gets a container runtime's
// (localhost resolves), an image with one keeps it, and neither image
// directory is written.
func TestChrootHosts(t *testing.T) {
	tests := []struct {
		name, own, want string
	}{
		{name: "none in the image", want: "127.0.0.1\tlocalhost imagegate\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
		{name: "the image's own", own: "10.0.0.1 db\n", want: "10.0.0.1 db\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := mustRootFS(t)
			if tt.own != "" {
				if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte(tt.own), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := treeState(t, root)
			got := runCmd(t, mustChroot(t, root, sandbox.ChrootOptions{}), sandbox.Command{Path: "/bin/cat", Args: []string{"/etc/hosts"}})
			if diff := cmp.Diff(run{stdout: tt.want}, got, cmp.AllowUnexported(run{}), cmp.Comparer(errorsEqual)); diff != "" {
				t.Errorf("cat /etc/hosts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, treeState(t, root)); diff != "" {
				t.Errorf("image changed (-before +after):\n%s", diff)
			}
		})
	}
}
