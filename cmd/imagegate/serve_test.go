package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/apiclient"
)

// newServeTestRoot is the root command with the control-plane commands
// added, for as long as newRootCmd does not register them itself.
func newServeTestRoot(stdout, stderr io.Writer) *cobra.Command {
	root := newRootCmd(stdout, stderr)
	g := &globalOptions{stderr: stderr}
	for _, c := range []*cobra.Command{newServeCmd(g), newVersionCmd(g), newRolloutCmd(g), newPinCmd(g), newResolveCmd(g)} {
		name := strings.Fields(c.Use)[0]
		if !slices.ContainsFunc(root.Commands(), func(have *cobra.Command) bool { return have.Name() == name }) {
			root.AddCommand(c)
		}
	}
	return root
}

// TestHelperProcess is the imagegate program with the control-plane
// commands, re-executed by the tests below as a separate process (which
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newServeTestRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	stop()
	switch {
	case err == nil:
		os.Exit(0)
	case gateFailed(err):
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "imagegate: %v\n", oneLine(err))
	os.Exit(2)
}

// helperCommand runs imagegate (with the control-plane commands) as a
// child process.
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

// TestServeScripts runs testdata/servescript: imagegate serve in the
// background on a free port, driven by the client commands.
func TestServeScripts(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/servescript",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// An "imagegate" first in PATH that is this test binary
			// running TestHelperProcess.
			bin := filepath.Join(env.WorkDir, ".bin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				return err
			}
			script := fmt.Sprintf("#!/bin/sh\nIMAGEGATE_HELPER_PROCESS=1 exec %q -test.run='^TestHelperProcess$' -- \"$@\"\n", exe)
			if err := os.WriteFile(filepath.Join(bin, "imagegate"), []byte(script), 0o755); err != nil {
				return err
			}
			env.Setenv("PATH", bin+string(filepath.ListSeparator)+env.Getenv("PATH"))
			return nil
		},
	})
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
	c, _ := apiclient.New(url, "", nil)
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
