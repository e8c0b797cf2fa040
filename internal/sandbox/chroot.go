package sandbox

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// ChrootOptions are the limits of a Chroot. Zero values take the defaults
// noted on each field.
type ChrootOptions struct {
	// Hostname seen inside; "imagegate" when empty.
	Hostname string
	// MaxOpenFiles is RLIMIT_NOFILE; 4096 when zero.
	MaxOpenFiles uint64
	// MaxFileSize is RLIMIT_FSIZE, the largest file a program may write
	// (a write beyond it kills the writer with SIGXFSZ); 256 MiB when zero.
	MaxFileSize uint64
	// MaxAddressSpace is RLIMIT_AS; unlimited when zero, because runtimes
	// such as the JVM, Go and Node reserve far more address space than they
	// use and fail to start under a tight limit.
	MaxAddressSpace uint64
	// TmpSize bounds each of the two memory file systems a run writes
	// to: the layer holding writes into the image, and /tmp; 256 MiB when
	// zero.
	TmpSize uint64
}

func (o ChrootOptions) withDefaults() ChrootOptions {
	if o.Hostname == "" {
		o.Hostname = "imagegate"
	}
	if o.MaxOpenFiles == 0 {
		o.MaxOpenFiles = 4096
	}
	if o.MaxFileSize == 0 {
		o.MaxFileSize = 256 << 20
	}
	if o.TmpSize == 0 {
		o.TmpSize = 256 << 20
	}
	return o
}

// Chroot runs programs inside a root filesystem, isolated from this
// machine: each Run gets new mount, PID, network, IPC and UTS namespaces;
// the root seen by the program is an overlay whose lower layer is the image
// (read-only) and whose writable layer is a memory file system thrown away
// afterwards, so nothing is ever written into the image directory; it has a
// private /proc (with /proc/sys read-only), a minimal /dev (null, zero,
// full, random, urandom, shm, fd), an empty /tmp, a loopback-only network,
// its own hostname, resource limits, and a reduced capability bounding set
// (that of a default Docker container). The root is entered with
// pivot_root, so the host's file tree is not reachable from inside.
//
// A small init process (this binary, re-executed; see the package's init
// function) sets all this up, starts the program as its child, reaps orphans,
// and reports the program's exit status. When the program exits, or on
// timeout, the init exits or is killed, and the kernel kills everything
// else in the PID namespace: nothing is left behind.
//
// Chroot needs root (CAP_SYS_ADMIN); see Permitted. It is safe for
// concurrent use: runs share nothing.
type Chroot struct {
	root string
	opts ChrootOptions
}

// NewChroot returns a Chroot for the root filesystem at root, which must be
// an existing directory. It does not check permissions: see Permitted.
func NewChroot(root string, opts ChrootOptions) (*Chroot, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("chroot root %s: %w", root, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("chroot root %s: %w", root, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("chroot root %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("chroot root %s: not a directory", root)
	}
	return &Chroot{root: real, opts: opts.withDefaults()}, nil
}

// Mode is "chroot".
func (c *Chroot) Mode() string { return "chroot" }

// childConfig is what the parent tells the init process, as JSON on fd 3.
type childConfig struct {
	Probe bool          `json:"probe,omitempty"`
	Root  string        `json:"root"`
	Path  string        `json:"path"`
	Args  []string      `json:"args"`
	Env   []string      `json:"env"`
	Dir   string        `json:"dir"`
	Opts  ChrootOptions `json:"opts"`
	User  *Credential   `json:"user,omitempty"`
	// Before and After run around the program; see Command.
	Before [][]string `json:"before,omitempty"`
	After  [][]string `json:"after,omitempty"`
	// Serve: the init also runs the commands Service.Exec sends on
	// ctlFD while the program runs.
	Serve bool `json:"serve,omitempty"`
}

// childStatus is what the init process reports back, as JSON on fd 4.
type childStatus struct {
	// Err is set when the program could not be started; Stage says
	// which step of the set-up failed.
	Err    string `json:"err,omitempty"`
	Errno  int    `json:"errno,omitempty"`
	Stage  string `json:"stage,omitempty"`
	Status uint32 `json:"status"` // wait status of the program
}

const (
	childEnv   = "IMAGEGATE_SANDBOX_INIT"
	childMagic = "v1"
	childArg0  = "imagegate-sandbox-init"
	cloneFlags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET |
		syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
)

// Run runs cmd inside the root filesystem and reports how it ended. The
// error is non-nil only when the program could not be started: it or its
// working directory is missing (ErrNotFound), it cannot be executed (for
// instance its ELF interpreter is missing in the image), or the sandbox
// could not be set up.
func (c *Chroot) Run(ctx context.Context, cmd Command) (Result, error) {
	cfg, err := c.config(cmd)
	if err != nil {
		return Result{}, err
	}
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	st, timedOut, err := runInit(ctx, cfg, cmd)
	return c.result(cmd, st, timedOut, err)
}

// config checks cmd against the image and makes the init's config.
func (c *Chroot) config(cmd Command) (childConfig, error) {
	if !path.IsAbs(cmd.Path) {
		return childConfig{}, fmt.Errorf("run %q: program path must be absolute inside the image", cmd.Path)
	}
	// Checked here, on the image as it is, because inside the sandbox a
	// failed exec only says ENOENT, which also means a missing ELF
	// interpreter or shared loader.
	prog, err := securejoin.SecureJoin(c.root, cmd.Path)
	if err != nil {
		return childConfig{}, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	if err := checkProgram(prog); err != nil {
		return childConfig{}, fmt.Errorf("run %s in %s: %w", cmd.Path, c.root, err)
	}
	dir := cmd.Dir
	if dir == "" {
		dir = "/"
	}
	if hostDir, err := securejoin.SecureJoin(c.root, dir); err != nil {
		return childConfig{}, fmt.Errorf("run %s: working directory %s: %w", cmd.Path, dir, err)
	} else if fi, err := os.Stat(hostDir); err != nil || !fi.IsDir() {
		return childConfig{}, fmt.Errorf("run %s: working directory %s: %w", cmd.Path, dir, ErrNotFound)
	}
	for _, argv := range append(append([][]string{}, cmd.Before...), cmd.After...) {
		if len(argv) == 0 || !path.IsAbs(argv[0]) {
			return childConfig{}, fmt.Errorf("run %s: set-up and tear-down programs need an absolute path, got %q", cmd.Path, argv)
		}
	}
	return childConfig{
		Root: c.root, Path: cmd.Path, Args: append([]string{cmd.Path}, cmd.Args...),
		Env: cmd.Env, Dir: dir, Opts: c.opts, User: cmd.User, Before: cmd.Before, After: cmd.After,
	}, nil
}

// Stages of Service.Exec's checks in the running sandbox.
const (
	stageFindProgram = "find program"
	stageFindDir     = "find working directory"
)

// result translates the init's report into how the program ended.
func (c *Chroot) result(cmd Command, st childStatus, timedOut bool, err error) (Result, error) {
	if err != nil {
		return Result{}, fmt.Errorf("run %s in %s: %w", cmd.Path, c.root, err)
	}
	if timedOut {
		return Result{ExitCode: -1, Signal: syscall.SIGKILL.String(), TimedOut: true}, nil
	}
	if st.Err != "" {
		err := errors.New(st.Err)
		if st.Errno != 0 {
			err = syscall.Errno(st.Errno)
		}
		if errors.Is(err, syscall.ENOENT) {
			switch st.Stage {
			case stageFindProgram:
				return Result{}, fmt.Errorf("run %s in %s: %w", cmd.Path, c.root, ErrNotFound)
			case stageFindDir:
				return Result{}, fmt.Errorf("run %s: working directory %s: %w", cmd.Path, cmp.Or(cmd.Dir, "/"), ErrNotFound)
			}
		}
		if st.Stage == "exec" && errors.Is(err, syscall.ENOENT) {
			return Result{}, fmt.Errorf("run %s in %s: cannot execute: its interpreter (ELF loader or #! line) is %w", cmd.Path, c.root, ErrNotFound)
		}
		return Result{}, fmt.Errorf("run %s in %s: sandbox %s: %w", cmd.Path, c.root, st.Stage, err)
	}
	return resultOf(syscall.WaitStatus(st.Status)), nil
}

// runInit starts the init process with cfg, wires cmd's streams, and
// returns its report, or timedOut when ctx ended first.
func runInit(ctx context.Context, cfg childConfig, cmd Command) (st childStatus, timedOut bool, err error) {
	p, err := startInit(ctx, cfg, cmd)
	if err != nil {
		return st, false, err
	}
	return p.wait()
}

// initProc is a started sandbox init.
type initProc struct {
	c *exec.Cmd
	// ctl is our end of the Exec control socket when cfg.Serve.
	ctl    *os.File
	statR  *os.File
	out    *outputs
	encErr error
	killed atomic.Bool
	stop   chan struct{}
}

// startInit starts the init process with cfg and hands it cfg; it runs
// until it reports, or until ctx ends or kill is called, which kill it
// and with it everything in its PID namespace. wait must be called once.
func startInit(ctx context.Context, cfg childConfig, cmd Command) (*initProc, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create config pipe: %w", err)
	}
	defer cfgR.Close()
	defer cfgW.Close()
	statR, statW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create status pipe: %w", err)
	}
	defer statW.Close()
	extra := []*os.File{cfgR, statW}
	var ctl *os.File
	if cfg.Serve {
		var child *os.File
		if ctl, child, err = socketPair(); err != nil {
			statR.Close()
			return nil, fmt.Errorf("create control socket: %w", err)
		}
		defer child.Close()
		extra = append(extra, child)
	}
	var out *outputs
	if cfg.Probe {
		out = &outputs{}
	} else if out, err = newOutputs(cmd); err != nil {
		statR.Close()
		if ctl != nil {
			ctl.Close()
		}
		return nil, err
	}
	c := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{childArg0},
		// Under the race detector, an exiting binary sleeps a second
		// unless told not to; the init is this binary.
		Env:        []string{childEnv + "=" + childMagic, "GORACE=atexit_sleep_ms=0"},
		Stdin:      cmd.Stdin,
		Stdout:     out.stdout(),
		Stderr:     out.stderr(),
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneFlags,
			// Should imagegate die, so does the sandbox.
			Pdeathsig: syscall.SIGKILL,
		},
		WaitDelay: drainGrace,
	}
	if err := c.Start(); err != nil {
		out.closeChildEnds()
		out.closeReadEnds()
		statR.Close()
		if ctl != nil {
			ctl.Close()
		}
		if errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("create namespaces: %w (%s)", err, permissionAdvice)
		}
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	out.closeChildEnds()
	cfgR.Close()
	statW.Close()

	p := &initProc{c: c, ctl: ctl, statR: statR, out: out, stop: make(chan struct{})}
	go func() {
		select {
		case <-ctx.Done():
			p.kill()
		case <-p.stop:
		}
	}()
	// The init reads its whole config before doing anything, so this
	// cannot deadlock on a full pipe; an init that died early gives EPIPE.
	p.encErr = json.NewEncoder(cfgW).Encode(cfg)
	cfgW.Close()
	return p, nil
}

// kill ends the init; the kernel then kills everything in its PID
// namespace. Safe to call more than once, and after it ended.
func (p *initProc) kill() {
	p.killed.Store(true)
	_ = p.c.Process.Kill()
}

// wait waits for the init's report and exit, and for the output to be
// delivered.
func (p *initProc) wait() (st childStatus, timedOut bool, err error) {
	raw, _ := io.ReadAll(bufio.NewReader(p.statR))
	p.statR.Close()
	waitErr := p.c.Wait()
	close(p.stop)
	p.out.finish()
	if p.killed.Load() && len(raw) == 0 {
		return st, true, nil
	}
	if len(raw) == 0 {
		// The init died without a word: a crash of ours, reported with
		// whatever it managed to say.
		return st, false, fmt.Errorf("sandbox init failed: %w", errors.Join(waitErr, p.encErr))
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, false, fmt.Errorf("sandbox init report %q: %w", raw, err)
	}
	// A program that finished as the deadline passed still finished.
	return st, false, nil
}

const permissionAdvice = "chroot execution needs root or CAP_SYS_ADMIN to create namespaces; run as root, or use --exec none"

// Permitted reports whether Chroot can run programs on this machine, by
// trying: it starts an init in new namespaces that sets up a memory file
// system and exits. Its error says what to do instead.
func Permitted() error {
	if caps, err := effectiveCaps(); err == nil && caps&(1<<21) == 0 { // CAP_SYS_ADMIN
		return errors.New(permissionAdvice)
	}
	st, _, err := runInit(context.Background(), childConfig{Probe: true}, Command{})
	if err != nil {
		return fmt.Errorf("chroot execution is not possible here: %w", err)
	}
	if st.Err != "" {
		return fmt.Errorf("chroot execution is not possible here: %s: %s (%s)", st.Stage, st.Err, permissionAdvice)
	}
	return nil
}

// effectiveCaps reads this process's effective capability set.
func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}
