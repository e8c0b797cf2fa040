package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/apiclient"
)

// TestHelperProcess is the imagegate program, re-executed by the tests below as a separate process (which
// they can kill -9). It does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("IMAGEGATE_HELPER_PROCESS") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	// testscript.Main made a temporary bin directory for this process
	// and would remove it on return, which os.Exit skips.
	if first, _, _ := strings.Cut(os.Getenv("PATH"), string(filepath.ListSeparator)); strings.Contains(first, "testscript-main") {
		os.RemoveAll(filepath.Dir(first))
	}
	os.Exit(runMain(args))
}

// helperCommand runs imagegate as a child process.
func helperCommand(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"-test.run=^TestHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "IMAGEGATE_HELPER_PROCESS=1")
	return cmd
}

// serverProc is an imagegate serve child process.
type serverProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *strings.Builder
}

// startServer starts imagegate serve with args plus a free port and waits
// until it answers /readyz.
func startServer(t testing.TB, env []string, args ...string) *serverProc {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "addr")
	cmd := helperCommand(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--addr-file", addr}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	s := &serverProc{cmd: cmd, stderr: &strings.Builder{}}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.stderr.WriteString(sc.Text() + "\n")
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		pw.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url, err := waitForURL(ctx, addr, 30*time.Second)
	if err != nil {
		t.Fatalf("server did not start: %v\n%s", err, s.stderr)
	}
	s.url = url
	// A server on TLS is trusted with the CA its client commands get.
	var ca string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "IMAGEGATE_CA_CERT="); ok {
			ca = v
		}
	}
	hc, err := apiclient.HTTPClient(ca, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := apiclient.New(url, "", hc)
	for c.Ready(ctx) != nil {
		if ctx.Err() != nil {
			t.Fatalf("server %s never became ready:\n%s", url, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// kill9 kills the server without warning and reaps it.
func (s *serverProc) kill9(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.cmd.Wait()
}
