package source

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/snapshot"
	"golang.org/x/sys/unix"
)

// ErrUnsafeEntry is wrapped by every refusal of a layer entry that would
// reach outside the image root: a name with "..", a hard link to a file
// outside, a write through a symbolic link that climbs above the root.
var ErrUnsafeEntry = errors.New("path leaves the image root")

// ErrLimit is wrapped when a layer exceeds a size or entry-count limit.
var ErrLimit = errors.New("image exceeds a limit")

const (
	defaultMaxFileSize  = 8 << 30
	defaultMaxTotalSize = 64 << 30
	defaultMaxEntries   = 5_000_000
	// maxLinkFollows bounds symlink expansion while resolving a parent
	// directory, like the kernel's ELOOP limit.
	maxLinkFollows = 40
	// maxDirHandles bounds the directory handles kept open between
	// entries; layers list a directory's entries together, so a few
	// hundred cover the working set of any real layer.
	maxDirHandles = 512

	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Extractor applies image layers, in order, onto one directory the way a
// container runtime's overlay would show them, without ever creating,
// changing or following anything outside that directory.
//
// Safety model. Every entry name is cleaned lexically; one that still
// starts with ".." is refused. Its parent directory is then resolved
// component by component inside the root, following symbolic links the way
// the image would see them: an absolute target restarts at the image root,
// and a relative target that climbs above the root is refused (not clamped,
// as securejoin would, because such a layer is hostile or broken and the
// user should hear about it). Each component is opened relative to the
// handle of the directory before it with O_NOFOLLOW|O_DIRECTORY, so the
// kernel itself refuses to follow a link or enter anything but a
// directory; the handles are kept open while the entries beneath them are
// written (openat, mkdirat, symlinkat, linkat relative to the parent's
// handle, each with a single-component name), which is both what keeps a
// write inside the root and what makes extraction cost one system call per
// entry instead of one per path component. Every handle names a directory
// reached that way; removing a directory or a link drops them all, so none
// outlives what it names. Rare operations (removing a tree, emptying an
// opaque directory) go through an os.Root opened on the tree.
// (cyphar/filepath-securejoin was considered; it silently clamps "..".)
//
// Symbolic links are created exactly as stored and never followed on the
// host. Hard links must name a file already extracted into the tree.
// Device nodes and FIFOs are not created but recorded in Skipped.
//
// Modes: permission bits are kept, set when a file is created and changed
// afterwards only where the umask or a change of owner would lose them.
// Setuid, setgid and sticky bits and ownership are kept only when running
// as root (the tree lives inside a 0700 directory, so no other user can
// reach those files); otherwise files belong to the invoking user and the
// special bits are dropped, since they would grant that user's identity
// rather than the image's. Directories are kept owner-accessible when not
// root so the tree can be read and removed. Modification times are not
// restored.
//
// An Extractor is not safe for concurrent use.
type Extractor struct {
	root   *os.Root
	rootFd int
	limits limits
	asRoot bool
	// masked are the permission bits the umask takes from a mode given
	// to open or mkdir; a file wanting any of them is chmod-ed after.
	masked fs.FileMode

	layer   int
	entries int
	total   int64
	buf     []byte
	skipped []snapshot.SkippedEntry

	// seen holds the resolved paths this layer created, which whiteouts
	// and opaque markers of the same layer must not hide (OCI image spec:
	// whiteouts apply to lower layers only).
	seen map[string]struct{}
	// dirModes holds the mode each explicit directory entry asked for,
	// applied by Finish so that read-only directories do not block later
	// writes into them.
	dirModes map[string]fs.FileMode
	// dirs caches lexical directory → resolved directory, and fds the
	// open handles of resolved directories. Removing anything but a
	// regular file may change a resolution, so it clears both.
	dirs map[string]string
	fds  map[string]int
	// retired are handles dropped during the current entry, closed before
	// the next: the entry may still be writing through its parent's.
	retired []int
	// w writes small files in the background (writers.go).
	w writers
}

type limits struct {
	maxFile, maxTotal int64
	maxEntries        int
}

func newLimits(opts Options) limits {
	return limits{
		maxFile:    cmp.Or(opts.MaxFileSize, defaultMaxFileSize),
		maxTotal:   cmp.Or(opts.MaxTotalSize, defaultMaxTotalSize),
		maxEntries: cmp.Or(opts.MaxEntries, defaultMaxEntries),
	}
}

// NewExtractor prepares to apply layers onto dir, which must exist. The
// limits of opts apply to everything applied through it (0 = default).
func NewExtractor(dir string, opts Options) (*Extractor, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open extraction directory: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("open extraction directory: %w", &fs.PathError{Op: "open", Path: dir, Err: err})
	}
	e := &Extractor{
		root:     r,
		rootFd:   fd,
		limits:   newLimits(opts),
		asRoot:   os.Geteuid() == 0,
		masked:   umask(),
		buf:      make([]byte, 256<<10),
		dirModes: map[string]fs.FileMode{},
		dirs:     map[string]string{},
		fds:      map[string]int{},
	}
	e.startWriters()
	return e, nil
}

// umask reads the process's umask without changing it (unix.Umask can
// only be read by setting it, which would race with other goroutines
// creating files). When it cannot be read, every bit counts as masked, so
// modes are always set explicitly.
func umask() fs.FileMode {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fs.ModePerm
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return fs.FileMode(m) & fs.ModePerm
			}
		}
	}
	return fs.ModePerm
}

// Close releases the directory handles. It does not remove anything.
func (e *Extractor) Close() error {
	e.stopWriters()
	e.dropHandles()
	e.closeRetired()
	unix.Close(e.rootFd)
	return e.root.Close()
}

// dropHandles forgets every resolution and every directory handle but the
// root's; the handles are closed by closeRetired.
func (e *Extractor) dropHandles() {
	e.wait() // a writer may be using a handle
	clear(e.dirs)
	for _, fd := range e.fds {
		e.retired = append(e.retired, fd)
	}
	clear(e.fds)
}

func (e *Extractor) closeRetired() {
	for _, fd := range e.retired {
		unix.Close(fd)
	}
	e.retired = e.retired[:0]
}

// Skipped lists the entries that were deliberately not created, sorted by
// path.
func (e *Extractor) Skipped() []snapshot.SkippedEntry {
	return sortSkipped(e.skipped)
}

func sortSkipped(s []snapshot.SkippedEntry) []snapshot.SkippedEntry {
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b snapshot.SkippedEntry) int { return strings.Compare(a.Path, b.Path) })
	return slices.CompactFunc(out, func(a, b snapshot.SkippedEntry) bool { return a.Path == b.Path })
}

// Finish applies the directory modes recorded from the layers. Call it once
// after the last layer.
func (e *Extractor) Finish() error {
	if e.wait(); e.w.err != nil {
		return e.w.err
	}
	paths := make([]string, 0, len(e.dirModes))
	for p := range e.dirModes {
		paths = append(paths, p)
	}
	// Deepest first: a parent that loses its search bit must not stop its
	// children from being changed.
	slices.SortFunc(paths, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(b, "/"), strings.Count(a, "/")), strings.Compare(a, b))
	})
	for _, p := range paths {
		want := e.dirModes[p]
		if p == "." {
			if err := e.root.Chmod(p, want); err != nil {
				return fmt.Errorf("set mode of /: %w", err)
			}
			continue
		}
		pfd, err := e.dirFd(path.Dir(p))
		if err != nil {
			continue // a parent removed or replaced by a later layer
		}
		base := path.Base(p)
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue // removed or replaced by a later layer
		}
		if unixMode(want) == st.Mode&0o7777 {
			continue
		}
		// fchmodat cannot refuse to follow a link on Linux; the entry was
		// a directory a moment ago and nothing else writes the tree.
		if err := unix.Fchmodat(pfd, base, unixMode(want), 0); err != nil {
			return fmt.Errorf("set mode of /%s: %w", p, err)
		}
	}
	e.dropHandles()
	e.closeRetired()
	return nil
}

// unixMode turns an fs.FileMode's permission and special bits into the
// kernel's.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

// ApplyLayer applies the next layer, an uncompressed tar stream. Layers are
// numbered from 1 in the order they are applied, and errors name the layer
// and the offending entry. After an error the tree is in an unspecified
// (but contained) state and should be removed.
func (e *Extractor) ApplyLayer(ctx context.Context, r io.Reader) error {
	e.layer++
	e.seen = map[string]struct{}{}
	clear(e.w.fresh)
	tr := tar.NewReader(r)
	err := eachEntry(ctx, tr, e.layer, &e.entries, e.limits.maxEntries, func(hdr *tar.Header) error {
		if len(e.fds) > maxDirHandles {
			e.dropHandles()
		}
		e.closeRetired()
		if err := e.apply(hdr, tr); err != nil {
			return err
		}
		return e.failed()
	})
	// The next layer, and Finish, see every file of this one.
	e.wait()
	return cmp.Or(err, e.w.err)
}

// eachEntry reads layer's tar entries in order and hands each to apply,
// counting them into *entries against maxEntries. Extraction and the
// in-memory tree read layers through it, so both stop at the same entry
// with the same words.
func eachEntry(ctx context.Context, tr *tar.Reader, layer int, entries *int, maxEntries int, apply func(*tar.Header) error) error {
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if last != "" {
				return fmt.Errorf("layer %d: read tar after entry %q: %w", layer, last, err)
			}
			return fmt.Errorf("layer %d: read tar: %w", layer, err)
		}
		last = hdr.Name
		*entries++
		if *entries > maxEntries {
			return fmt.Errorf("layer %d entry %q: %w: more than %d entries (raise it with --max-entries)", layer, hdr.Name, ErrLimit, maxEntries)
		}
		if err := apply(hdr); err != nil {
			var a attributed
			if errors.As(err, &a) {
				return err // a writer's, naming its own entry
			}
			return fmt.Errorf("layer %d entry %q: %w", layer, hdr.Name, err)
		}
	}
}

// cleanName turns a tar entry name into a clean path relative to the root,
// stripping leading slashes as docker does, and refuses names that climb
// out of it.
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", ErrUnsafeEntry
	}
	if strings.IndexByte(c, 0) >= 0 {
		return "", errors.New("name contains a NUL byte")
	}
	return c, nil
}

// pathErr names the in-image path in a system call's error.
func pathErr(op, p string, err error) error {
	return &fs.PathError{Op: op, Path: "/" + p, Err: err}
}

func (e *Extractor) apply(hdr *tar.Header, tr *tar.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			e.dirModes["."] = e.dirMode(hdr)
		}
		return nil
	}
	dirLex, base := path.Split(name)
	dirLex = path.Clean(dirLex)

	if strings.HasPrefix(base, whiteoutPrefix) {
		return e.whiteout(dirLex, base)
	}

	parent, pfd, err := e.resolveDir(dirLex, true)
	if err != nil {
		return err
	}
	p := path.Join(parent, base)
	e.waitFor(p)

	switch hdr.Typeflag {
	case tar.TypeDir:
		return e.dir(pfd, base, p, hdr)
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont: //nolint:staticcheck // TypeRegA still occurs in old archives
		return e.file(pfd, base, parent, p, hdr, tr)
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return errors.New("symbolic link with an empty target")
		}
		err := e.create(pfd, base, p, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) })
		if err != nil {
			return pathErr("symlink", p, err)
		}
		e.seen[p] = struct{}{}
		return e.chown(pfd, base, p, hdr)
	case tar.TypeLink:
		return e.hardlink(pfd, base, p, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		// Overlay semantics: the entry still hides what lower layers had.
		if err := e.removeExisting(pfd, base, p, false); err != nil {
			return err
		}
		e.skipped = append(e.skipped, snapshot.SkippedEntry{Path: "/" + name, Reason: specialReason[hdr.Typeflag]})
		return nil
	default:
		e.skipped = append(e.skipped, snapshot.SkippedEntry{Path: "/" + name, Reason: fmt.Sprintf("unsupported tar entry type %q", hdr.Typeflag)})
		return nil
	}
}

var specialReason = map[byte]string{tar.TypeChar: "character device", tar.TypeBlock: "block device", tar.TypeFifo: "FIFO"}

// create runs mk, which makes the entry base in the directory pfd, and
// when something is already there clears it and runs mk once more: layers
// mostly add new paths, so asking first would cost a call per entry.
func (e *Extractor) create(pfd int, base, p string, mk func() error) error {
	err := mk()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := e.removeExisting(pfd, base, p, false); err != nil {
		return err
	}
	return mk()
}

// dirFd returns an open handle on the resolved directory p (clean,
// relative, real directories only), opening it from its parent's.
func (e *Extractor) dirFd(p string) (int, error) {
	if p == "." {
		return e.rootFd, nil
	}
	if fd, ok := e.fds[p]; ok {
		return fd, nil
	}
	pfd, err := e.dirFd(path.Dir(p))
	if err != nil {
		return -1, err
	}
	fd, err := openDirAt(pfd, path.Base(p))
	if err != nil {
		return -1, pathErr("open", p, err)
	}
	e.fds[p] = fd
	return fd, nil
}

// openDirAt opens the directory name in dirfd: ELOOP when it is a symbolic
// link, ENOTDIR when it is anything else but a directory.
func openDirAt(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ENOTDIR) {
			// With O_DIRECTORY a link fails as "not a directory" too.
			var st unix.Stat_t
			if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unix.ELOOP
			}
		}
		return fd, err
	}
}

// resolveDir resolves a lexical directory path (clean, relative) to a path
// of real directories inside the root and an open handle on it, following
// symbolic links as the image would. With create, missing directories are
// made (0755).
func (e *Extractor) resolveDir(lex string, create bool) (string, int, error) {
	if lex == "." {
		return ".", e.rootFd, nil
	}
	if r, ok := e.dirs[lex]; ok {
		fd, err := e.dirFd(r)
		return r, fd, err
	}
	var resolved []string
	todo := strings.Split(lex, "/")
	follows := 0
	via := "" // the last link followed, for the error
	fd := e.rootFd
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			// Only reachable through a link target: names are clean.
			if len(resolved) == 0 {
				return "", -1, fmt.Errorf("%w through %s", ErrUnsafeEntry, via)
			}
			resolved = resolved[:len(resolved)-1]
			var err error
			if fd, err = e.dirFd(path.Join(append([]string{"."}, resolved...)...)); err != nil {
				return "", -1, err
			}
			continue
		}
		p := path.Join(append(resolved, c)...)
		if cfd, ok := e.fds[p]; ok {
			resolved, fd = append(resolved, c), cfd
			continue
		}
		if _, ok := e.w.pending[p]; ok {
			// A file still being written: wait, and resolve afresh
			// (waiting may have dropped the handles).
			e.wait()
			return e.resolveDir(lex, create)
		}
		cfd, err := openDirAt(fd, c)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(fd, c, 0o755); err != nil {
				return "", -1, pathErr("mkdir", p, err)
			}
			e.seen[p] = struct{}{}
			e.w.fresh[p] = struct{}{}
			delete(e.dirModes, p) // a fresh directory, whatever was here before
			cfd, err = openDirAt(fd, c)
		}
		switch {
		case err == nil:
			e.fds[p] = cfd
			resolved, fd = append(resolved, c), cfd
		case errors.Is(err, unix.ELOOP):
			follows++
			if follows > maxLinkFollows {
				return "", -1, fmt.Errorf("too many levels of symbolic links in %q", "/"+lex)
			}
			target, err := readlinkAt(fd, c)
			if err != nil {
				return "", -1, pathErr("readlink", p, err)
			}
			via = fmt.Sprintf("symbolic link %q -> %q", "/"+p, target)
			if strings.HasPrefix(target, "/") {
				resolved, fd = resolved[:0], e.rootFd // absolute targets mean inside the image
			}
			todo = append(strings.Split(target, "/"), todo...)
		case errors.Is(err, unix.ENOTDIR):
			return "", -1, fmt.Errorf("/%s is not a directory", p)
		default:
			return "", -1, pathErr("open", p, err)
		}
	}
	r := path.Join(resolved...)
	if r == "" {
		r = "."
	}
	e.dirs[lex] = r
	return r, fd, nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// removeExisting clears the way for a new entry at base in pfd (p is its
// resolved path). A directory stays when keepDir (layers merge
// directories).
func (e *Extractor) removeExisting(pfd int, base, p string, keepDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return pathErr("lstat", p, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if keepDir {
			return nil
		}
		e.dropHandles()
		return e.root.RemoveAll(p)
	case unix.S_IFREG:
	default:
		e.dropHandles()
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return pathErr("remove", p, err)
	}
	return nil
}

func (e *Extractor) dirMode(hdr *tar.Header) fs.FileMode {
	m := e.mode(hdr)
	if !e.asRoot {
		m |= 0o700
	}
	return m
}

func (e *Extractor) mode(hdr *tar.Header) fs.FileMode {
	m := hdr.FileInfo().Mode()
	keep := fs.ModePerm
	if e.asRoot {
		keep |= fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	}
	return m & keep
}

func (e *Extractor) dir(pfd int, base, p string, hdr *tar.Header) error {
	err := unix.Mkdirat(pfd, base, 0o755)
	if err == nil {
		e.w.fresh[p] = struct{}{}
	}
	if errors.Is(err, unix.EEXIST) {
		if err := e.removeExisting(pfd, base, p, true); err != nil {
			return err
		}
		if err = unix.Mkdirat(pfd, base, 0o755); errors.Is(err, unix.EEXIST) {
			err = nil // a directory already, and it stays
		}
	}
	if err != nil {
		return pathErr("mkdir", p, err)
	}
	e.seen[p] = struct{}{}
	e.dirModes[p] = e.dirMode(hdr)
	return e.chown(pfd, base, p, hdr)
}

func (e *Extractor) file(pfd int, base, parent, p string, hdr *tar.Header, tr *tar.Reader) error {
	if hdr.Size > e.limits.maxFile {
		return fmt.Errorf("%w: file is %d bytes, over the %s per-file limit (raise it with --max-file-size)", ErrLimit, hdr.Size, bytesHuman(e.limits.maxFile))
	}
	want := e.mode(hdr)
	handed, err := e.handOff(pfd, base, parent, p, hdr.Size, hdr.Name, want, hdr.Uid, hdr.Gid, func(dst *[]byte) error {
		*dst = (*dst)[:0]
		return copyLimited(e.buf, &e.total, e.limits, tr, func(b []byte) error { *dst = append(*dst, b...); return nil })
	})
	if handed || err != nil {
		return err
	}
	var fd int
	// O_EXCL|O_NOFOLLOW: never opens an existing file or link.
	err = e.create(pfd, base, p, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(want.Perm()))
		return err
	})
	if err != nil {
		return pathErr("open", p, err)
	}
	e.seen[p] = struct{}{}
	if err := e.copy(fd, tr); err != nil {
		unix.Close(fd)
		return err
	}
	return e.finishFile(fd, p, want, hdr.Uid, hdr.Gid)
}

// finishFile gives a file just written its owner and the mode bits open
// could not, and closes it.
func (e *Extractor) finishFile(fd int, p string, want fs.FileMode, uid, gid int) error {
	if e.asRoot && (uid != 0 || gid != 0) {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			unix.Close(fd)
			return pathErr("chown", p, err)
		}
	}
	// Special bits are never given to open, so that Fchown, which clears
	// them, comes first; the umask may have taken bits open was given.
	if want&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 || want&e.masked != 0 {
		if err := unix.Fchmod(fd, unixMode(want)); err != nil {
			unix.Close(fd)
			return pathErr("chmod", p, err)
		}
	}
	if err := unix.Close(fd); err != nil {
		return pathErr("close", p, err)
	}
	return nil
}

// copy streams one file's contents, counting bytes against the per-file
// and total limits as they arrive rather than trusting the header.
func (e *Extractor) copy(fd int, r io.Reader) error {
	return copyLimited(e.buf, &e.total, e.limits, r, func(b []byte) error {
		for len(b) > 0 {
			n, err := unix.Write(fd, b)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	})
}

// copyLimited reads r to its end through buf, passing each piece to
// write, and fails as soon as the file or the running total (*total, all
// files so far) exceeds its limit.
func copyLimited(buf []byte, total *int64, lim limits, r io.Reader, write func([]byte) error) error {
	var n int64
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			n += int64(k)
			*total += int64(k)
			if n > lim.maxFile {
				return fmt.Errorf("%w: file is over the %s per-file limit (raise it with --max-file-size)", ErrLimit, bytesHuman(lim.maxFile))
			}
			if *total > lim.maxTotal {
				return fmt.Errorf("%w: image is over the %s total size limit (raise it with --max-total-size)", ErrLimit, bytesHuman(lim.maxTotal))
			}
			if err := write(buf[:k]); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("read contents (truncated or corrupt layer?): %w", rerr)
		}
	}
}

func (e *Extractor) hardlink(pfd int, base, p string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil || target == "." {
		return fmt.Errorf("%w: hard link to %q", ErrUnsafeEntry, hdr.Linkname)
	}
	tdir, tbase := path.Split(target)
	tparent, tfd, err := e.resolveDir(path.Clean(tdir), false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hard link target %q is not in the image", hdr.Linkname)
		}
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	tp := path.Join(tparent, tbase)
	e.waitFor(tp)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("hard link target %q is not in the image", hdr.Linkname)
		}
		return pathErr("lstat", tp, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hard link target %q is a directory", hdr.Linkname)
	}
	if tp == p {
		return nil
	}
	// No AT_SYMLINK_FOLLOW: a link to a symbolic link is a second name
	// for the link, never for what it points at.
	if err := e.create(pfd, base, p, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) }); err != nil {
		return pathErr("link", p, err)
	}
	e.seen[p] = struct{}{}
	return nil
}

func (e *Extractor) chown(pfd int, base, p string, hdr *tar.Header) error {
	// Everything is created owned by root when running as root.
	if !e.asRoot || (hdr.Uid == 0 && hdr.Gid == 0) {
		return nil
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathErr("chown", p, err)
	}
	return nil
}

// whiteout hides lower-layer entries as the OCI image spec says: ".wh.NAME"
// removes NAME, ".wh..wh..opq" empties the directory of everything lower
// layers put there. Entries this layer created stay, whatever the order of
// the archive.
func (e *Extractor) whiteout(dirLex, base string) error {
	if base == opaqueMarker {
		dir, _, err := e.resolveDir(dirLex, true)
		if err != nil {
			return err
		}
		return e.opaque(dir)
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout %q", base)
	}
	dir, _, err := e.resolveDir(dirLex, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing below to hide
	}
	if err != nil {
		return err
	}
	p := path.Join(dir, name)
	if _, ok := e.seen[p]; ok {
		return nil
	}
	e.dropHandles()
	return e.root.RemoveAll(p)
}

func (e *Extractor) opaque(dir string) error {
	e.dropHandles()
	var walk func(d string) error
	walk = func(d string) error {
		f, err := e.root.Open(d)
		if err != nil {
			return err
		}
		ents, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return err
		}
		for _, ent := range ents {
			p := path.Join(d, ent.Name())
			if _, ok := e.seen[p]; !ok {
				if err := e.root.RemoveAll(p); err != nil {
					return err
				}
				continue
			}
			if ent.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(dir)
}

func bytesHuman(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
