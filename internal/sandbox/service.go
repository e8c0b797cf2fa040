package sandbox

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Service is a program Start left running in a sandbox of its own — an
// image's entrypoint, as `docker run` starts it — so that what a running
// container offers can be checked from outside: its listening sockets,
// its processes, connections to its loopback network, its files — and
// commands run beside it (Exec), as `docker exec` runs them.
//
// Its methods are safe for concurrent use. Stop must be called, also when
// the program has exited by itself; after Stop nothing of the sandbox is
// left running.
type Service struct {
	init *initProc
	// pid is the init's PID on this machine; it is PID 1 of the
	// sandbox's PID namespace and in its network namespace.
	pid int
	// pidNS identifies the PID namespace ("pid:[4026532…]").
	pidNS string
	// netns is held open so that Dial works while the sandbox lives.
	netns *os.File
	cmd   Command
	c     *Chroot
	// cancel releases the Timeout context, if any.
	cancel context.CancelFunc

	// ctlMu guards the control socket Exec writes to against Stop.
	ctlMu     sync.Mutex
	ctlClosed bool

	done     chan struct{}
	result   Result
	err      error
	stopOnce sync.Once
}

// Start starts cmd in a new sandbox, as Run does, and returns while it
// runs: a service to be checked, then stopped. cmd.Timeout, when set,
// kills it after that long; ctx ending kills it too. Before and After are
// not supported. The error is non-nil when the program could not be
// started; a program that fails later is seen through Exited.
func (c *Chroot) Start(ctx context.Context, cmd Command) (*Service, error) {
	if len(cmd.Before) > 0 || len(cmd.After) > 0 {
		return nil, fmt.Errorf("start %s: set-up and tear-down steps are for Run", cmd.Path)
	}
	cfg, err := c.config(cmd)
	if err != nil {
		return nil, err
	}
	cfg.Serve = true
	cancel := context.CancelFunc(func() {})
	if cmd.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
	}
	p, err := startInit(ctx, cfg, cmd)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start %s in %s: %w", cmd.Path, c.root, err)
	}
	s := &Service{init: p, pid: p.c.Process.Pid, cmd: cmd, c: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		st, timedOut, err := p.wait()
		s.result, s.err = c.result(cmd, st, timedOut, err)
		close(s.done)
	}()
	// The namespaces exist from the clone on; the init sets them up
	// before it starts the program.
	proc := "/proc/" + strconv.Itoa(s.pid)
	if s.pidNS, err = os.Readlink(proc + "/ns/pid"); err == nil {
		s.netns, err = os.Open(proc + "/ns/net")
	}
	if err != nil {
		// An init already gone has said why, which is the better error.
		if _, startErr := s.Stop(); startErr != nil {
			return nil, startErr
		}
		return nil, fmt.Errorf("start %s: its namespaces: %w", cmd.Path, err)
	}
	return s, nil
}

// Done is closed when the program has ended (by itself, or by Stop).
func (s *Service) Done() <-chan struct{} { return s.done }

// Exited reports whether the program has ended and, if so, how: the
// Result, or the error that kept it from starting (a missing interpreter,
// a working directory the user cannot enter).
func (s *Service) Exited() (bool, Result, error) {
	select {
	case <-s.done:
		return true, s.result, s.err
	default:
		return false, Result{}, nil
	}
}

// Stop kills the program and everything it started (the sandbox's PID
// namespace), waits until they are gone, and reports how the program
// ended (TimedOut when Stop ended it). It is idempotent.
func (s *Service) Stop() (Result, error) {
	s.stopOnce.Do(func() {
		s.init.kill()
		<-s.done
		s.closeCtl()
		s.cancel()
		if s.netns != nil {
			s.netns.Close()
		}
	})
	return s.result, s.err
}

// Process is one process in the sandbox.
type Process struct {
	// PID is its PID on this machine.
	PID int
	// Comm is its command name (/proc/PID/comm, at most 15 bytes), what
	// goss's process resource matches.
	Comm string
}

// Processes lists the processes in the sandbox, the sandbox's own init
// left out.
func (s *Service) Processes() ([]Process, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == s.pid {
			continue
		}
		dir := "/proc/" + e.Name()
		// A process that ended meanwhile is simply not listed.
		if ns, err := os.Readlink(dir + "/ns/pid"); err != nil || ns != s.pidNS {
			continue
		}
		comm, err := os.ReadFile(dir + "/comm")
		if err != nil {
			continue
		}
		out = append(out, Process{PID: pid, Comm: strings.TrimSuffix(string(comm), "\n")})
	}
	return out, nil
}

// Socket is a socket bound in the sandbox's network namespace.
type Socket struct {
	// Proto is tcp, tcp6, udp or udp6, as /proc/net names the table.
	Proto string
	IP    net.IP
	Port  int
	// Listening: a TCP socket in LISTEN state, or a UDP socket bound
	// with no peer.
	Listening bool
}

// Sockets lists the sockets of the sandbox's network namespace, from its
// /proc/net tables.
func (s *Service) Sockets() ([]Socket, error) {
	var out []Socket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", s.pid, proto))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(proto, "6") {
				continue // no IPv6 in this kernel
			}
			return nil, fmt.Errorf("read sockets: %w", err)
		}
		socks, err := parseSockets(proto, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read /proc/net/%s: %w", proto, err)
		}
		out = append(out, socks...)
	}
	return out, nil
}

// parseSockets reads one /proc/net/{tcp,udp}[6] table: "sl local_address
// rem_address st …", addresses as hex in the kernel's byte order.
func parseSockets(proto string, f *os.File) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(f)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		ip, port, err := parseHexAddr(fields[1])
		if err != nil {
			return nil, err
		}
		rip, rport, err := parseHexAddr(fields[2])
		if err != nil {
			return nil, err
		}
		st, err := strconv.ParseUint(fields[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", fields[3], err)
		}
		listening := st == 0x0a // TCP_LISTEN
		if strings.HasPrefix(proto, "udp") {
			listening = rport == 0 && rip.IsUnspecified()
		}
		out = append(out, Socket{Proto: proto, IP: ip, Port: port, Listening: listening})
	}
	return out, sc.Err()
}

// parseHexAddr reads "0100007F:1F90": the address as 32-bit words in host
// byte order, the port big-endian.
func parseHexAddr(s string) (net.IP, int, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, fmt.Errorf("address %q", s)
	}
	b, err := hex.DecodeString(a)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil, 0, fmt.Errorf("address %q", s)
	}
	ip := make(net.IP, len(b))
	for w := 0; w < len(b); w += 4 {
		binary.BigEndian.PutUint32(ip[w:], binary.NativeEndian.Uint32(b[w:w+4]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("port %q: %w", p, err)
	}
	if v4 := ip.To4(); v4 != nil && len(b) == 4 {
		ip = v4
	}
	return ip, int(port), nil
}

// Dial connects to address (an IP literal and port: no name is resolved
// here, since this machine's resolver is not the sandbox's) from inside
// the sandbox's network namespace, so loopback is the sandbox's own. The
// connection outlives the call as any other would.
func (s *Service) Dial(ctx context.Context, network, address string, local net.Addr) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("dial %s in the sandbox: %q is not an IP address", address, host)
	}
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// The thread joins the sandbox's network namespace for the
		// socket call (a socket keeps the namespace it was made in) and
		// goes back before it is unlocked. It must not simply end
		// locked: the thread that started an init may be this one, and
		// its end would deliver the init's parent-death signal.
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{err: fmt.Errorf("dial in the sandbox: %w", err)}
			return
		}
		defer own.Close()
		if err := unix.Setns(int(s.netns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- res{err: fmt.Errorf("enter the sandbox's network: %w", err)}
			return
		}
		d := net.Dialer{LocalAddr: local}
		c, err := d.DialContext(ctx, network, address)
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays in the sandbox's namespace, locked, and ends with this goroutine
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// ReadFile reads a file as the program sees it (its root, its mounts),
// e.g. the /etc/hosts the sandbox wrote for an image without one.
func (s *Service) ReadFile(name string) ([]byte, error) {
	if !strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("read %s in the sandbox: the path must be absolute", name)
	}
	// The init's root is still this machine's; its first child's is the
	// image's. Pick any process of the sandbox that is not the init.
	procs, err := s.Processes()
	if err != nil {
		return nil, err
	}
	if len(procs) == 0 {
		return nil, fmt.Errorf("read %s in the sandbox: no process is running there", name)
	}
	rootFD, err := unix.Open(fmt.Sprintf("/proc/%d/root", procs[0].PID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s in the sandbox: %w", name, err)
	}
	defer unix.Close(rootFD)
	// Every link resolved inside that root (RESOLVE_IN_ROOT), so a link
	// in the image cannot point at this machine's files.
	fd, err := unix.Openat2(rootFD, strings.TrimPrefix(name, "/"), &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, fmt.Errorf("read %s in the sandbox: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxServiceFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in the sandbox: %w", name, err)
	}
	if len(b) > maxServiceFile {
		return nil, fmt.Errorf("read %s in the sandbox: larger than %d KiB", name, maxServiceFile>>10)
	}
	return b, nil
}

// maxServiceFile bounds ReadFile: it is for small configuration files.
const maxServiceFile = 1 << 20
