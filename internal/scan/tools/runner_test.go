package tools_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/target"
)

// execRunner runs a program of the image directly on this machine, the path
// resolved inside root, as the sandbox package's local runner does. It lives
// here until that runner is on main.
type execRunner struct{ root string }

var _ target.Runner = execRunner{}

func (r execRunner) Mode() string { return "local" }

func (r execRunner) Run(ctx context.Context, c sandbox.Command) (sandbox.Result, error) {
	// On the host the program runs by its own path: a script reached
	// through a link (Debian's psql -> pg_wrapper) sees the link's name.
	host := c.Path
	if r.root != "/" {
		var err error
		if host, err = securejoin.SecureJoin(r.root, c.Path); err != nil {
			return sandbox.Result{}, err
		}
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, host, c.Args...)
	// argv[0] is the name the image calls the program by: multi-call
	// programs (busybox, pg_wrapper) decide what to be from it.
	cmd.Args[0] = c.Path
	cmd.Env = c.Env
	cmd.Dir = "/"
	cmd.Stdin = c.Stdin
	cmd.Stdout, cmd.Stderr = orDiscard(c.Stdout), orDiscard(c.Stderr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 100e6
	err := cmd.Run()
	res := sandbox.Result{TimedOut: ctx.Err() != nil}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Signal = ws.Signal().String()
		}
		return res, nil
	case err != nil && !res.TimedOut:
		return res, fmt.Errorf("run %s: %w", c.Path, err)
	}
	return res, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
