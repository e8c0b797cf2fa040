package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// Local runs an image's programs directly on this machine: right for the
// host itself and for tool folders (e.g. /opt/hostedtoolcache) built to run
// here. It isolates nothing but the environment; each program runs in a
// process group of its own, which is killed as a whole on timeout and once
// the program exits (so daemons a version probe leaves behind do not
// outlive the scan; only a process that calls setsid escapes). Should
// imagegate itself be killed, the program is killed too, but not what it
// started: only Chroot's PID namespace guarantees that.
//
// Local is safe for concurrent use.
type Local struct {
	root string
}

// NewLocal returns a Local whose Command paths (program and working
// directory) are taken inside root: joined under it with symbolic links
// resolved inside root, never above it. root "/" is the host as it is.
func NewLocal(root string) *Local {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &Local{root: filepath.Clean(root)}
}

// Mode is "local".
func (l *Local) Mode() string { return "local" }

// inRoot maps an in-image path to this machine, resolving links inside root.
func (l *Local) inRoot(p string) (string, error) {
	if l.root == "/" {
		return path.Clean("/" + p), nil
	}
	return securejoin.SecureJoin(l.root, p)
}

// Run runs cmd and reports how it ended. The error is non-nil only when the
// program could not be started: it is missing (ErrNotFound), not
// executable, or its working directory is missing.
func (l *Local) Run(ctx context.Context, cmd Command) (Result, error) {
	step := func(argv []string) error {
		if len(argv) == 0 {
			return fmt.Errorf("run %s: empty set-up or tear-down command", cmd.Path)
		}
		_, err := l.run(ctx, Command{Path: argv[0], Args: argv[1:], Env: cmd.Env, Dir: cmd.Dir,
			Timeout: cmd.Timeout, User: cmd.User})
		return err
	}
	for _, argv := range cmd.Before {
		if err := step(argv); err != nil {
			return Result{}, err
		}
	}
	res, err := l.run(ctx, cmd)
	if err != nil {
		return res, err
	}
	for _, argv := range cmd.After {
		if err := step(argv); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

func (l *Local) run(ctx context.Context, cmd Command) (Result, error) {
	if !path.IsAbs(cmd.Path) {
		return Result{}, fmt.Errorf("run %q: program path must be absolute inside the image", cmd.Path)
	}
	prog, err := l.inRoot(cmd.Path)
	if err != nil {
		return Result{}, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	if err := checkProgram(prog); err != nil {
		return Result{}, fmt.Errorf("run %s in %s: %w", cmd.Path, l.root, err)
	}
	dir := cmd.Dir
	if dir == "" {
		dir = "/"
	}
	hostDir, err := l.inRoot(dir)
	if err != nil {
		return Result{}, fmt.Errorf("run %s: working directory %s: %w", cmd.Path, dir, err)
	}
	if fi, err := os.Stat(hostDir); err != nil || !fi.IsDir() {
		return Result{}, fmt.Errorf("run %s: working directory %s: %w", cmd.Path, dir, ErrNotFound)
	}

	out, err := newOutputs(cmd)
	if err != nil {
		return Result{}, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	// argv[0] keeps the name as called (before links are resolved):
	// multi-call programs such as clang++ or busybox dispatch on it.
	argv0 := cmd.Path
	if l.root != "/" {
		argv0 = filepath.Join(l.root, cmd.Path)
	}
	c := &exec.Cmd{
		Path:   prog,
		Args:   append([]string{argv0}, cmd.Args...),
		Env:    append([]string{}, cmd.Env...), // non-nil: inherit nothing
		Dir:    hostDir,
		Stdin:  cmd.Stdin,
		Stdout: out.stdout(),
		Stderr: out.stderr(),
		// The group is ours to kill; should imagegate die, its leader
		// dies too (what it started does not: see Local).
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cmd.User.sys()},
		WaitDelay:   drainGrace,
	}
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	if err := c.Start(); err != nil {
		out.closeChildEnds()
		out.closeReadEnds()
		return Result{}, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	out.closeChildEnds()
	pid := c.Process.Pid

	// The group is killed only while its leader is unreaped: a zombie
	// leader keeps its pid, and so the group id, from being reused.
	var (
		mu       sync.Mutex
		reaped   bool
		timedOut bool
	)
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			mu.Lock()
			if !reaped {
				timedOut = true
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
			mu.Unlock()
		case <-stop:
		}
	}()
	waitErr := waitExited(pid)
	mu.Lock()
	_ = syscall.Kill(-pid, syscall.SIGKILL) // leftovers of a program that exited
	reaped = true
	mu.Unlock()
	close(stop)
	err = c.Wait()
	out.finish()
	if c.ProcessState == nil {
		return Result{}, fmt.Errorf("run %s: %w", cmd.Path, errors.Join(waitErr, err))
	}
	res := resultOf(c.ProcessState.Sys().(syscall.WaitStatus))
	res.TimedOut = timedOut
	return res, nil
}

// waitExited blocks until pid has exited without reaping it (WNOWAIT).
func waitExited(pid int) error {
	const pPID = 1
	var info [128]byte // siginfo_t, not looked at
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|0x01000000 /* WNOWAIT */, 0, 0)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return fmt.Errorf("wait for %d: %w", pid, e)
		}
	}
}

// checkProgram says clearly why a program file cannot be run, before a
// bare ENOENT or EACCES from exec would.
func checkProgram(hostPath string) error {
	fi, err := os.Stat(hostPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotFound
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("is a directory")
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("not executable (mode %s)", fi.Mode().Perm())
	}
	return nil
}
