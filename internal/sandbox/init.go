package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"unsafe"
)

// init is the sandbox's own init process. Chroot.Run re-executes the
// running binary (/proc/self/exe) in new namespaces with argv[0] set to
// childArg0 and only childEnv in the environment; this function recognises
// that, sets the sandbox up, runs the program, reports, and exits — it never
// returns to the rest of the binary. Because it is a package init, it works
// in every binary that imports this package, test binaries included,
// without any help from main. It runs after the init functions of the
// packages this one imports, and possibly of unrelated ones, so nothing
// that imports sandbox should do heavy work in init.
func init() {
	if len(os.Args) != 1 || os.Args[0] != childArg0 || os.Getenv(childEnv) != childMagic {
		return
	}
	os.Exit(sandboxInit())
}

// stageError names the set-up step that failed, for the parent's message.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

func step(stage string, err error) error {
	if err == nil {
		return nil
	}
	return &stageError{stage, err}
}

func sandboxInit() int {
	cfgFile, status := os.NewFile(3, "config"), os.NewFile(4, "status")
	if cfgFile == nil || status == nil {
		return 125
	}
	// Neither pipe (nor the control socket) may reach the program.
	syscall.CloseOnExec(3)
	syscall.CloseOnExec(4)
	report := func(st childStatus) int {
		if err := json.NewEncoder(status).Encode(st); err != nil {
			return 125
		}
		return 0
	}
	fail := func(err error) int {
		st := childStatus{Err: err.Error(), Stage: "set-up"}
		var se *stageError
		if errors.As(err, &se) {
			st.Stage, st.Err = se.stage, se.err.Error()
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			st.Errno = int(errno)
		}
		return report(st)
	}
	var cfg childConfig
	if err := json.NewDecoder(cfgFile).Decode(&cfg); err != nil {
		return fail(step("read config", err))
	}
	cfgFile.Close()

	// Capability bounding sets are per thread, and the program is forked
	// from this one.
	runtime.LockOSThread()
	if err := setUp(cfg); err != nil {
		return fail(err)
	}
	if cfg.Probe {
		return report(childStatus{})
	}
	if err := dropCapabilities(); err != nil {
		return fail(step("drop capabilities", err))
	}
	// Set-up and tear-down write nothing to the program's streams.
	devNull, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		return fail(step("open /dev/null", err))
	}
	quiet := []uintptr{devNull.Fd(), devNull.Fd(), devNull.Fd()}
	for _, argv := range cfg.Before {
		if _, err := runChild(cfg, argv, quiet); err != nil {
			return fail(step("set-up "+argv[0], err))
		}
	}
	var ws syscall.WaitStatus
	if cfg.Serve {
		syscall.CloseOnExec(ctlFD)
		ws, err = serve(cfg, ctlFD)
	} else {
		ws, err = runChild(cfg, cfg.Args, []uintptr{0, 1, 2})
	}
	if err != nil {
		return fail(err)
	}
	for _, argv := range cfg.After {
		if _, err := runChild(cfg, argv, quiet); err != nil {
			return fail(step("tear-down "+argv[0], err))
		}
	}
	return report(childStatus{Status: uint32(ws)})
}

// runChild starts argv as cfg says and waits for it. As PID 1 the init
// inherits every orphan; it reaps them until the child itself ends.
// Returning at the end kills whatever was left running.
func runChild(cfg childConfig, argv []string, files []uintptr) (syscall.WaitStatus, error) {
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Dir:   cfg.Dir,
		Env:   cfg.Env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Credential: cfg.User.sys()},
	})
	if err != nil {
		return 0, step("exec", err)
	}
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case err == syscall.EINTR:
		case err != nil:
			return 0, step("wait", err)
		case wpid == pid:
			return ws, nil
		}
	}
}

// stageDir is where the init, in its private mount namespace, mounts the
// memory file system that holds the new root; the host never sees it.
const stageDir = "/tmp"

const oPath = 0x200000 // O_PATH, which package syscall lacks

// setUp builds the program's view of the world in the init's fresh
// namespaces and enters it with pivot_root.
func setUp(cfg childConfig) error {
	// Without this, mounts would propagate back to the host's shared
	// mounts (systemd makes / shared).
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return step("make mounts private", err)
	}
	size := cfg.Opts.TmpSize
	if cfg.Probe {
		return step("mount tmpfs", syscall.Mount("tmpfs", stageDir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=1m"))
	}
	// Held open so the image stays reachable even when the stage covers
	// it (an image under /tmp).
	rootFD, err := syscall.Open(cfg.Root, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return step("open root", err)
	}
	defer syscall.Close(rootFD)
	if err := syscall.Mount("tmpfs", stageDir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
		fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return step("mount tmpfs", err)
	}
	upper, work, newRoot := stageDir+"/upper", stageDir+"/work", stageDir+"/root"
	for _, d := range []string{upper, work, newRoot} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return step("prepare overlay", err)
		}
	}
	// The image is the read-only lower layer; every write lands in the
	// memory file system and vanishes with the namespace.
	opts := fmt.Sprintf("lowerdir=/proc/self/fd/%d,upperdir=%s,workdir=%s", rootFD, upper, work)
	if err := syscall.Mount("overlay", newRoot, "overlay", syscall.MS_NODEV, opts); err != nil {
		return step("mount overlay of the image", err)
	}
	for _, d := range []string{"proc", "dev", "tmp"} {
		if err := ensureDir(filepath.Join(newRoot, d)); err != nil {
			return step("create /"+d, err)
		}
	}
	if err := mountProc(newRoot + "/proc"); err != nil {
		return err
	}
	if err := mountDev(newRoot+"/dev", size); err != nil {
		return err
	}
	if err := ensureHosts(newRoot+"/etc", cfg.Opts.Hostname); err != nil {
		return step("create /etc/hosts", err)
	}
	if err := syscall.Mount("tmpfs", newRoot+"/tmp", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
		fmt.Sprintf("size=%d,mode=1777", size)); err != nil {
		return step("mount /tmp", err)
	}
	if err := syscall.Sethostname([]byte(cfg.Opts.Hostname)); err != nil {
		return step("set hostname", err)
	}
	if err := loopbackUp(); err != nil {
		return step("bring up loopback", err)
	}
	if err := setLimits(cfg.Opts); err != nil {
		return step("set resource limits", err)
	}
	// pivot_root rather than chroot: the host's tree is detached from the
	// namespace entirely, so a root program cannot climb out of a chroot.
	if err := syscall.Chdir(newRoot); err != nil {
		return step("enter root", err)
	}
	if err := syscall.PivotRoot(".", "."); err != nil {
		return step("pivot_root", err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return step("detach host root", err)
	}
	return step("enter root", syscall.Chdir("/"))
}

// ensureDir makes p a directory in the overlay, replacing a file or link
// the image has there (the replacement lives only in the memory layer).
func ensureDir(p string) error {
	fi, err := os.Lstat(p)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err == nil {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return os.Mkdir(p, 0o755)
}

func mountProc(p string) error {
	const flags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC
	if err := syscall.Mount("proc", p, "proc", flags, ""); err != nil {
		return step("mount /proc", err)
	}
	// The new /proc shows the new PID namespace, but /proc/sys and
	// sysrq-trigger still reach the host's kernel.
	sys := p + "/sys"
	if err := syscall.Mount(sys, sys, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return step("protect /proc/sys", err)
	}
	if err := syscall.Mount("", sys, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|flags, ""); err != nil {
		return step("protect /proc/sys", err)
	}
	err := syscall.Mount("/dev/null", p+"/sysrq-trigger", "", syscall.MS_BIND, "")
	if err != nil && err != syscall.ENOENT { // kernels without magic SysRq lack it
		return step("protect /proc/sysrq-trigger", err)
	}
	return nil
}

// devices are the character devices programs expect in a minimal /dev.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

func mountDev(dev string, size uint64) error {
	if err := syscall.Mount("tmpfs", dev, "tmpfs", syscall.MS_NOSUID|syscall.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return step("mount /dev", err)
	}
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	for _, d := range devices {
		p := dev + "/" + d.name
		err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(d.major<<8|d.minor))
		if err == nil {
			continue
		}
		// Where mknod is refused, bind the host's node instead.
		f, cerr := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
		if cerr != nil {
			return step("create /dev/"+d.name, errors.Join(err, cerr))
		}
		f.Close()
		if berr := syscall.Mount("/dev/"+d.name, p, "", syscall.MS_BIND, ""); berr != nil {
			return step("create /dev/"+d.name, errors.Join(err, berr))
		}
	}
	if err := os.Mkdir(dev+"/shm", 0o1777); err != nil {
		return step("create /dev/shm", err)
	}
	if err := syscall.Mount("tmpfs", dev+"/shm", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
		fmt.Sprintf("size=%d,mode=1777", size)); err != nil {
		return step("mount /dev/shm", err)
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "core": "/proc/kcore",
	} {
		if err := os.Symlink(target, dev+"/"+name); err != nil {
			return step("create /dev/"+name, err)
		}
	}
	return nil
}

// loopbackUp brings up lo, the only interface of the new network
// namespace, so programs that talk to localhost work; nothing else exists.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr [40]byte // struct ifreq: name[16], then flags
	copy(ifr[:], "lo")
	*(*uint16)(unsafe.Pointer(&ifr[16])) = syscall.IFF_UP | syscall.IFF_LOOPBACK | syscall.IFF_RUNNING
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		return e
	}
	return nil
}

// setLimits sets the init's resource limits, which the program inherits.
// RLIMIT_NPROC is not set: it counts processes per user across all
// namespaces and is not enforced for root.
func setLimits(o ChrootOptions) error {
	limits := []struct {
		res int
		max uint64
	}{
		{syscall.RLIMIT_NOFILE, o.MaxOpenFiles},
		{syscall.RLIMIT_FSIZE, o.MaxFileSize},
		{syscall.RLIMIT_CORE, 0},
	}
	if o.MaxAddressSpace > 0 {
		limits = append(limits, struct {
			res int
			max uint64
		}{syscall.RLIMIT_AS, o.MaxAddressSpace})
	}
	for _, l := range limits {
		if err := syscall.Setrlimit(l.res, &syscall.Rlimit{Cur: l.max, Max: l.max}); err != nil {
			return fmt.Errorf("limit %d: %w", l.res, err)
		}
	}
	return nil
}

// keptCaps is Docker's default capability set: enough for package
// managers, build tools and interpreters, not enough to load kernel
// modules, reconfigure the kernel or mount file systems.
const keptCaps = 1<<0 | 1<<1 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | // chown, dac_override, fowner, fsetid, kill, setgid, setuid, setpcap
	1<<10 | 1<<13 | 1<<18 | 1<<27 | 1<<29 | 1<<31 // net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap

// dropCapabilities removes every other capability from this thread's
// bounding set, so that the program, although it runs as root, gets only
// keptCaps when it is executed.
func dropCapabilities() error {
	const prCapbsetDrop = 24
	for c := uintptr(0); c < 64; c++ {
		if keptCaps&(1<<c) != 0 {
			continue
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prCapbsetDrop, c, 0); e != 0 {
			if e == syscall.EINVAL { // past the kernel's last capability
				return nil
			}
			return fmt.Errorf("capability %d: %w", c, e)
		}
	}
	return nil
}

// ensureHosts gives an image without /etc/hosts the one a container
// runtime would write, so that localhost resolves; it lives only in the
// memory layer. An image's own file (or link) is left alone.
func ensureHosts(etc, hostname string) error {
	// Still before pivot_root: a link here would point into the host.
	fi, err := os.Lstat(etc)
	switch {
	case err == nil && !fi.IsDir():
		return nil
	case err != nil:
		if err := os.Mkdir(etc, 0o755); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(etc + "/hosts"); err == nil {
		return nil
	}
	return os.WriteFile(etc+"/hosts", []byte("127.0.0.1\tlocalhost "+hostname+"\n::1\tlocalhost ip6-localhost ip6-loopback\n"), 0o644)
}
