package sandbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Service.Exec runs a command beside a started program, as `docker exec`
// does in a running container. The sandbox's own init starts it, on
// request: it already is in every namespace of the sandbox, under its
// root, with its limits and its reduced capability bounding set, so the
// command gets exactly what the program got. Entering the namespaces from
// here instead (setns) would not do: a mount namespace cannot be entered
// by a thread that shares its file system state with others, which every
// Go thread does, and the limits and bounding set would have to be
// rebuilt by hand.
//
// The protocol, on a SOCK_SEQPACKET socket pair (ctlFD in the init): one
// message per command, an execRequest as JSON with four descriptors
// (stdin, stdout, stderr, and a reply socket of the command's own). On the
// reply socket the init sends one childStatus once the command and every
// process left in its process group are gone; a byte sent to it, or its
// closing, asks the init to kill that group.

// ctlFD is the init's end of the control socket (after the config and
// status pipes).
const ctlFD = 5

// execRequest is one command for the init to start.
type execRequest struct {
	Args []string    `json:"args"`
	Env  []string    `json:"env"`
	Dir  string      `json:"dir"`
	User *Credential `json:"user,omitempty"`
}

// maxExecRequest bounds one request (its environment, mostly).
const maxExecRequest = 256 << 10

// groupGone bounds how long the init waits for a killed process group to
// be reaped before it reports anyway.
const groupGone = 5 * time.Second

func socketPair() (ours, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "sandbox control"), os.NewFile(uintptr(fds[1]), "sandbox control"), nil
}

// Exec runs cmd beside the program Start started, as `docker exec` runs a
// command in a running container: in the sandbox's network, PID, mount,
// IPC and UTS namespaces, under its root (it sees what the program wrote),
// with its limits and capabilities, as cmd.User in cmd.Dir with cmd.Env
// (nothing of the program's is inherited). It reports how the command
// ended. When the command ends, or cmd.Timeout or ctx end it, every
// process still in its process group is killed, and gone before Exec
// returns; a process that left the group (setsid) lives until Stop. The
// error is non-nil when the command could not be started (ErrNotFound as
// for Run) or the program and with it the sandbox has ended. Before and
// After are not supported. Safe for concurrent use.
func (s *Service) Exec(ctx context.Context, cmd Command) (Result, error) {
	if len(cmd.Before) > 0 || len(cmd.After) > 0 {
		return Result{}, fmt.Errorf("exec %s: set-up and tear-down steps are for Run", cmd.Path)
	}
	if !path.IsAbs(cmd.Path) {
		return Result{}, fmt.Errorf("exec %q: program path must be absolute inside the image", cmd.Path)
	}
	// The program and directory are looked for by the init, in the
	// sandbox as it is now: the program may have made them.
	dir := cmp.Or(cmd.Dir, "/")
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	st, timedOut, err := s.exec(ctx, cmd, execRequest{
		Args: append([]string{cmd.Path}, cmd.Args...), Env: cmd.Env, Dir: dir, User: cmd.User})
	if err != nil {
		// The init's end is seen on the reply socket a moment before
		// it is seen by Done; the better message names it.
		select {
		case <-s.done:
		case <-time.After(drainGrace):
		}
		if exited, _, startErr := s.Exited(); exited {
			if startErr != nil {
				return Result{}, fmt.Errorf("exec %s: the sandbox's program could not run: %w", cmd.Path, startErr)
			}
			return Result{}, fmt.Errorf("exec %s: the sandbox's program has ended, and with it the sandbox: %w", cmd.Path, err)
		}
	}
	return s.c.result(cmd, st, timedOut, err)
}

// exec hands req to the init with cmd's streams and waits for its report.
func (s *Service) exec(ctx context.Context, cmd Command, req execRequest) (st childStatus, timedOut bool, err error) {
	msg, err := json.Marshal(req)
	if err != nil {
		return st, false, err
	}
	if len(msg) > maxExecRequest {
		return st, false, fmt.Errorf("the command and its environment are larger than %d KiB", maxExecRequest>>10)
	}
	out, err := newOutputs(cmd)
	if err != nil {
		return st, false, err
	}
	defer out.finish()
	defer out.closeChildEnds() // on early returns; a no-op once sent
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return st, false, err
	}
	defer devNull.Close()
	stdin := devNull
	if cmd.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return st, false, fmt.Errorf("create input pipe: %w", err)
		}
		defer r.Close()
		go func() {
			// As os/exec: the copy ends with the input or with the
			// command's end of the pipe.
			_, _ = io.Copy(w, cmd.Stdin)
			w.Close()
		}()
		stdin = r
	}
	files := []*os.File{stdin, devNull, devNull}
	for i, f := range out.child {
		if f != nil {
			files[i+1] = f
		}
	}
	reply, theirs, err := socketPair()
	if err != nil {
		return st, false, fmt.Errorf("create reply socket: %w", err)
	}
	defer reply.Close()
	fds := []int{int(files[0].Fd()), int(files[1].Fd()), int(files[2].Fd()), int(theirs.Fd())}
	err = s.send(msg, unix.UnixRights(fds...))
	theirs.Close()
	out.closeChildEnds()
	if err != nil {
		return st, false, fmt.Errorf("hand the command to the sandbox: %w", err)
	}

	type answer struct {
		b   []byte
		err error
	}
	got := make(chan answer, 1)
	go func() {
		b := make([]byte, 64<<10)
		n, err := reply.Read(b)
		got <- answer{b[:max(n, 0)], err}
	}()
	var a answer
	select {
	case a = <-got:
	case <-ctx.Done():
		// The init kills the group, then reports.
		_, _ = reply.Write([]byte{'k'})
		a = <-got
		timedOut = true
	}
	if a.err != nil || len(a.b) == 0 {
		return st, false, fmt.Errorf("the sandbox ended before the command did: %w", errors.Join(a.err, io.ErrUnexpectedEOF))
	}
	if err := json.Unmarshal(a.b, &st); err != nil {
		return st, false, fmt.Errorf("sandbox exec report %q: %w", a.b, err)
	}
	// A command that finished as the deadline passed still finished.
	ws := syscall.WaitStatus(st.Status)
	timedOut = timedOut && st.Err == "" && ws.Signaled() && ws.Signal() == syscall.SIGKILL
	return st, timedOut, nil
}

// send writes one request to the init, unless Stop has closed the socket.
func (s *Service) send(msg, oob []byte) error {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	if s.ctlClosed {
		return errors.New("the service is stopped")
	}
	raw, err := s.init.ctl.SyscallConn()
	if err != nil {
		return err
	}
	var sendErr error
	if err := raw.Write(func(fd uintptr) bool {
		sendErr = unix.Sendmsg(int(fd), msg, oob, nil, unix.MSG_NOSIGNAL)
		return sendErr != unix.EAGAIN
	}); err != nil {
		return err
	}
	return sendErr
}

// closeCtl tells the init no more commands come; called by Stop.
func (s *Service) closeCtl() {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	if !s.ctlClosed {
		s.ctlClosed = true
		s.init.ctl.Close()
	}
}

// The init's side.

// serve runs the program as runChild does and, until it ends, the
// commands sent on ctl. Every fork happens on this goroutine, whose
// thread is locked and carries the reduced bounding set; another reaps
// every child and orphan and hands each exit to whoever waits for it.
func serve(cfg childConfig, ctl int) (syscall.WaitStatus, error) {
	r := &reaper{waiting: map[int]*waiter{}}
	prog, err := r.start(cfg.Args, &syscall.ProcAttr{
		Dir: cfg.Dir, Env: cfg.Env, Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Credential: cfg.User.sys()},
	}, false)
	if err != nil {
		return 0, step("exec", err)
	}
	go r.reap()
	reqs := make(chan received)
	go readRequests(ctl, reqs)
	for {
		select {
		case ws := <-prog.done:
			return ws, nil
		case req := <-reqs:
			r.exec(req)
		}
	}
}

// waiter is a started child whose exit someone waits for.
type waiter struct {
	pid int
	// group: the child leads its own process group, killed when it ends.
	group bool
	done  chan syscall.WaitStatus
}

type reaper struct {
	// mu is held across each fork and its registration, so that a child
	// reaped at once is still found.
	mu      sync.Mutex
	waiting map[int]*waiter
}

func (r *reaper) start(argv []string, attr *syscall.ProcAttr, group bool) (*waiter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		return nil, err
	}
	w := &waiter{pid: pid, group: group, done: make(chan syscall.WaitStatus, 1)}
	r.waiting[pid] = w
	return w, nil
}

// reap reaps every child of the init (as PID 1 it inherits every orphan)
// for as long as the init lives.
func (r *reaper) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			// No child between the program's end and the init's.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		r.mu.Lock()
		w := r.waiting[pid]
		delete(r.waiting, pid)
		if w != nil && w.group {
			// What the command left behind in its group goes with it.
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		r.mu.Unlock()
		if w != nil {
			w.done <- ws
		}
	}
}

// kill kills w's process group unless w has been reaped already (its
// PID could then be another's).
func (r *reaper) kill(w *waiter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting[w.pid] == w {
		_ = syscall.Kill(-w.pid, syscall.SIGKILL)
	}
}

// received is one request as read from the control socket; err is set
// when it cannot be used, and then only reply may be valid.
type received struct {
	req   execRequest
	files []int // stdin, stdout, stderr
	reply int
	err   error
}

// readRequests reads requests until the parent closes its end.
func readRequests(ctl int, out chan<- received) {
	buf := make([]byte, maxExecRequest+1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(ctl, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return // the parent is gone or stopping: the program runs on
		}
		var fds []int
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if got, err := unix.ParseUnixRights(&m); err == nil {
					fds = append(fds, got...)
				}
			}
		}
		if len(fds) != 4 {
			for _, fd := range fds {
				syscall.Close(fd)
			}
			continue // not ours to answer: no reply socket
		}
		rc := received{files: fds[:3], reply: fds[3]}
		switch {
		case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
			rc.err = errors.New("request truncated")
		default:
			rc.err = json.Unmarshal(buf[:n], &rc.req)
		}
		if rc.err == nil && len(rc.req.Args) == 0 {
			rc.err = errors.New("request without a program")
		}
		out <- rc
	}
}

// findInSandbox checks, as Chroot.config does on the image, that the
// program and the directory exist, since a failed exec only says ENOENT,
// which also means a missing interpreter.
func findInSandbox(req execRequest) error {
	if err := checkProgram(req.Args[0]); err != nil {
		if errors.Is(err, ErrNotFound) {
			err = syscall.ENOENT
		}
		return step(stageFindProgram, err)
	}
	if fi, err := os.Stat(req.Dir); err != nil || !fi.IsDir() {
		return step(stageFindDir, syscall.ENOENT)
	}
	return nil
}

// exec starts one requested command, on the calling (locked) thread, and
// leaves a goroutine to answer for it.
func (r *reaper) exec(rc received) {
	// answer reports and shuts the reply socket down; closing it is
	// left to whoever may still read from it.
	answer := func(st childStatus) {
		b, _ := json.Marshal(st)
		_, _ = syscall.Write(rc.reply, b)
		_ = syscall.Shutdown(rc.reply, syscall.SHUT_RDWR)
	}
	var w *waiter
	err := rc.err
	if err == nil {
		err = findInSandbox(rc.req)
	}
	if err == nil {
		w, err = r.start(rc.req.Args, &syscall.ProcAttr{
			Dir: rc.req.Dir, Env: rc.req.Env, Files: []uintptr{uintptr(rc.files[0]), uintptr(rc.files[1]), uintptr(rc.files[2])},
			Sys: &syscall.SysProcAttr{Credential: rc.req.User.sys(), Setpgid: true},
		}, true)
	}
	// The command has its copies; ours would keep its output open.
	for _, fd := range rc.files {
		syscall.Close(fd)
	}
	if err != nil {
		st := childStatus{Err: err.Error(), Stage: "exec"}
		var se *stageError
		if errors.As(err, &se) {
			st.Stage, st.Err = se.stage, se.err.Error()
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			st.Errno = int(errno)
		}
		answer(st)
		syscall.Close(rc.reply)
		return
	}
	go func() {
		asked := make(chan struct{})
		go func() {
			// A byte, or the parent's end closing, asks for the kill;
			// answer's shutdown ends this read too.
			var b [1]byte
			_, _ = syscall.Read(rc.reply, b[:])
			close(asked)
		}()
		var ws syscall.WaitStatus
		select {
		case ws = <-w.done:
		case <-asked:
			r.kill(w)
			ws = <-w.done
		}
		// The reaper killed what was left in the group; wait until it
		// has reaped it too.
		for deadline := time.Now().Add(groupGone); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if syscall.Kill(-w.pid, 0) == syscall.ESRCH {
				break
			}
		}
		answer(childStatus{Status: uint32(ws)})
		// Closed only once the read has returned, so that it cannot read
		// a descriptor number given to another request meanwhile.
		<-asked
		syscall.Close(rc.reply)
	}()
}
