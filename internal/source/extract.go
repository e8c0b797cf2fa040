package source

import (
	"archive/tar"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/internal/snapshot"
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
// user should hear about it). The resolved path contains real directories
// only, and every file operation goes through an os.Root opened on the
// tree, so even a mistake in the resolution cannot reach the host: os.Root
// refuses any path that leaves it, including through a symlink.
// (cyphar/filepath-securejoin was considered; it silently clamps "..",
// and os.Root gives the same handle-based containment from the standard
// library.)
//
// Symbolic links are created exactly as stored and never followed on the
// host. Hard links must name a file already extracted into the tree.
// Device nodes and FIFOs are not created but recorded in Skipped.
//
// Modes: permission bits are kept. Setuid, setgid and sticky bits and
// ownership are kept only when running as root (the tree lives inside a
// 0700 directory, so no other user can reach those files); otherwise files
// belong to the invoking user and the special bits are dropped, since they
// would grant that user's identity rather than the image's. Directories
// are kept owner-accessible when not root so the tree can be read and
// removed. Modification times are not restored.
//
// An Extractor is not safe for concurrent use.
type Extractor struct {
	root   *os.Root
	limits limits
	asRoot bool

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
	// dirs caches lexical directory → resolved directory. Removing
	// anything but a regular file may change a resolution, so it clears
	// the cache.
	dirs map[string]string
}

type limits struct {
	maxFile, maxTotal int64
	maxEntries        int
}

// NewExtractor prepares to apply layers onto dir, which must exist. The
// limits of opts apply to everything applied through it (0 = default).
func NewExtractor(dir string, opts Options) (*Extractor, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open extraction directory: %w", err)
	}
	return &Extractor{
		root: r,
		limits: limits{
			maxFile:    cmp.Or(opts.MaxFileSize, defaultMaxFileSize),
			maxTotal:   cmp.Or(opts.MaxTotalSize, defaultMaxTotalSize),
			maxEntries: cmp.Or(opts.MaxEntries, defaultMaxEntries),
		},
		asRoot:   os.Geteuid() == 0,
		buf:      make([]byte, 256<<10),
		dirModes: map[string]fs.FileMode{},
		dirs:     map[string]string{},
	}, nil
}

// Close releases the directory handle. It does not remove anything.
func (e *Extractor) Close() error { return e.root.Close() }

// Skipped lists the entries that were deliberately not created, sorted by
// path.
func (e *Extractor) Skipped() []snapshot.SkippedEntry {
	out := slices.Clone(e.skipped)
	slices.SortFunc(out, func(a, b snapshot.SkippedEntry) int { return strings.Compare(a.Path, b.Path) })
	return slices.CompactFunc(out, func(a, b snapshot.SkippedEntry) bool { return a.Path == b.Path })
}

// Finish applies the directory modes recorded from the layers. Call it once
// after the last layer.
func (e *Extractor) Finish() error {
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
		fi, err := e.root.Lstat(p)
		if err != nil || !fi.IsDir() {
			continue // removed or replaced by a later layer
		}
		if err := e.root.Chmod(p, e.dirModes[p]); err != nil {
			return fmt.Errorf("set mode of /%s: %w", p, err)
		}
	}
	return nil
}

// ApplyLayer applies the next layer, an uncompressed tar stream. Layers are
// numbered from 1 in the order they are applied, and errors name the layer
// and the offending entry. After an error the tree is in an unspecified
// (but contained) state and should be removed.
func (e *Extractor) ApplyLayer(ctx context.Context, r io.Reader) error {
	e.layer++
	e.seen = map[string]struct{}{}
	tr := tar.NewReader(r)
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
				return fmt.Errorf("layer %d: read tar after entry %q: %w", e.layer, last, err)
			}
			return fmt.Errorf("layer %d: read tar: %w", e.layer, err)
		}
		last = hdr.Name
		e.entries++
		if e.entries > e.limits.maxEntries {
			return fmt.Errorf("layer %d entry %q: %w: more than %d entries (raise it with --max-entries)", e.layer, hdr.Name, ErrLimit, e.limits.maxEntries)
		}
		if err := e.apply(hdr, tr); err != nil {
			return fmt.Errorf("layer %d entry %q: %w", e.layer, hdr.Name, err)
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

	parent, err := e.resolveDir(dirLex, true)
	if err != nil {
		return err
	}
	p := path.Join(parent, base)

	switch hdr.Typeflag {
	case tar.TypeDir:
		return e.dir(p, hdr)
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont: //nolint:staticcheck // TypeRegA still occurs in old archives
		return e.file(p, hdr, tr)
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return errors.New("symbolic link with an empty target")
		}
		if err := e.removeExisting(p, false); err != nil {
			return err
		}
		if err := e.root.Symlink(hdr.Linkname, p); err != nil {
			return err
		}
		e.seen[p] = struct{}{}
		return e.chown(p, hdr)
	case tar.TypeLink:
		return e.hardlink(p, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		// Overlay semantics: the entry still hides what lower layers had.
		if err := e.removeExisting(p, false); err != nil {
			return err
		}
		e.skipped = append(e.skipped, snapshot.SkippedEntry{Path: "/" + name, Reason: map[byte]string{
			tar.TypeChar: "character device", tar.TypeBlock: "block device", tar.TypeFifo: "FIFO",
		}[hdr.Typeflag]})
		return nil
	default:
		e.skipped = append(e.skipped, snapshot.SkippedEntry{Path: "/" + name, Reason: fmt.Sprintf("unsupported tar entry type %q", hdr.Typeflag)})
		return nil
	}
}

// resolveDir resolves a lexical directory path (clean, relative) to a path
// of real directories inside the root, following symbolic links as the
// image would. With create, missing directories are made (0755).
func (e *Extractor) resolveDir(lex string, create bool) (string, error) {
	if lex == "." {
		return ".", nil
	}
	if r, ok := e.dirs[lex]; ok {
		return r, nil
	}
	var resolved []string
	todo := strings.Split(lex, "/")
	follows := 0
	via := "" // the last link followed, for the error
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			// Only reachable through a link target: names are clean.
			if len(resolved) == 0 {
				return "", fmt.Errorf("%w through %s", ErrUnsafeEntry, via)
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		p := path.Join(append(resolved, c)...)
		fi, err := e.root.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !create {
				return "", err
			}
			if err := e.root.Mkdir(p, 0o755); err != nil {
				return "", err
			}
			e.seen[p] = struct{}{}
			delete(e.dirModes, p) // a fresh directory, whatever was here before
			resolved = append(resolved, c)
		case err != nil:
			return "", err
		case fi.IsDir():
			resolved = append(resolved, c)
		case fi.Mode()&fs.ModeSymlink != 0:
			follows++
			if follows > maxLinkFollows {
				return "", fmt.Errorf("too many levels of symbolic links in %q", "/"+lex)
			}
			target, err := e.root.Readlink(p)
			if err != nil {
				return "", err
			}
			via = fmt.Sprintf("symbolic link %q -> %q", "/"+p, target)
			if strings.HasPrefix(target, "/") {
				resolved = resolved[:0] // absolute targets mean inside the image
			}
			todo = append(strings.Split(target, "/"), todo...)
		default:
			return "", fmt.Errorf("/%s is not a directory", p)
		}
	}
	r := path.Join(resolved...)
	if r == "" {
		r = "."
	}
	e.dirs[lex] = r
	return r, nil
}

// removeExisting clears the way for a new entry at p. A directory stays
// when the new entry is a directory too (layers merge directories).
func (e *Extractor) removeExisting(p string, keepDir bool) error {
	fi, err := e.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if keepDir {
			return nil
		}
		clear(e.dirs)
		return e.root.RemoveAll(p)
	}
	if !fi.Mode().IsRegular() {
		clear(e.dirs)
	}
	return e.root.Remove(p)
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

func (e *Extractor) dir(p string, hdr *tar.Header) error {
	if err := e.removeExisting(p, true); err != nil {
		return err
	}
	if err := e.root.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	e.seen[p] = struct{}{}
	e.dirModes[p] = e.dirMode(hdr)
	return e.chown(p, hdr)
}

func (e *Extractor) file(p string, hdr *tar.Header, tr *tar.Reader) error {
	if hdr.Size > e.limits.maxFile {
		return fmt.Errorf("%w: file is %d bytes, over the %s per-file limit (raise it with --max-file-size)", ErrLimit, hdr.Size, bytesHuman(e.limits.maxFile))
	}
	if err := e.removeExisting(p, false); err != nil {
		return err
	}
	f, err := e.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // O_EXCL: never opens an existing file or link
	if err != nil {
		return err
	}
	e.seen[p] = struct{}{}
	if err := e.copy(f, tr); err != nil {
		f.Close()
		return err
	}
	if e.asRoot {
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			f.Close()
			return err
		}
	}
	// After Chown, which clears setuid/setgid.
	if err := f.Chmod(e.mode(hdr)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copy streams one file's contents, counting bytes against the per-file
// and total limits as they arrive rather than trusting the header.
func (e *Extractor) copy(w io.Writer, r io.Reader) error {
	var n int64
	for {
		k, rerr := r.Read(e.buf)
		if k > 0 {
			n += int64(k)
			e.total += int64(k)
			if n > e.limits.maxFile {
				return fmt.Errorf("%w: file is over the %s per-file limit (raise it with --max-file-size)", ErrLimit, bytesHuman(e.limits.maxFile))
			}
			if e.total > e.limits.maxTotal {
				return fmt.Errorf("%w: image is over the %s total size limit (raise it with --max-total-size)", ErrLimit, bytesHuman(e.limits.maxTotal))
			}
			if _, err := w.Write(e.buf[:k]); err != nil {
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

func (e *Extractor) hardlink(p string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil || target == "." {
		return fmt.Errorf("%w: hard link to %q", ErrUnsafeEntry, hdr.Linkname)
	}
	tdir, tbase := path.Split(target)
	tparent, err := e.resolveDir(path.Clean(tdir), false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hard link target %q is not in the image", hdr.Linkname)
		}
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	tp := path.Join(tparent, tbase)
	fi, err := e.root.Lstat(tp)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hard link target %q is not in the image", hdr.Linkname)
		}
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("hard link target %q is a directory", hdr.Linkname)
	}
	if tp == p {
		return nil
	}
	if err := e.removeExisting(p, false); err != nil {
		return err
	}
	if err := e.root.Link(tp, p); err != nil {
		return err
	}
	e.seen[p] = struct{}{}
	return nil
}

func (e *Extractor) chown(p string, hdr *tar.Header) error {
	if !e.asRoot {
		return nil
	}
	return e.root.Lchown(p, hdr.Uid, hdr.Gid)
}

// whiteout hides lower-layer entries as the OCI image spec says: ".wh.NAME"
// removes NAME, ".wh..wh..opq" empties the directory of everything lower
// layers put there. Entries this layer created stay, whatever the order of
// the archive.
func (e *Extractor) whiteout(dirLex, base string) error {
	if base == opaqueMarker {
		dir, err := e.resolveDir(dirLex, true)
		if err != nil {
			return err
		}
		return e.opaque(dir)
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout %q", base)
	}
	dir, err := e.resolveDir(dirLex, false)
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
	clear(e.dirs)
	return e.root.RemoveAll(p)
}

func (e *Extractor) opaque(dir string) error {
	clear(e.dirs)
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
