package source

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/klauspost/compress/s2"
)

// What a streamed image keeps of its files' contents in memory: collectors
// read package databases, release and version files, Python sources and
// distribution metadata, all small; and ELF files, of which they read the
// headers and the dynamic-linking tables only (elfkeep.go). Anything else
// is read back from its layer when asked for.
const (
	// keepWhole is the largest file kept whole (an ELF file's tables are
	// kept whatever its size).
	keepWhole = 1 << 20
)

// Bulk that no collector reads, whose contents a streamed image does not
// keep (they are read back if anyone asks): message catalogs, compiled
// Python, Perl modules, JavaScript and Java code (JDK modules and class
// data archives among it), static archives and objects, web assets,
// fonts and images, compressed files of every kind, and whole
// documentation, translation and time-zone trees. Most of these are
// compressed already, so keeping them would cost their full size.
var (
	unreadSuffixes = []string{".mo", ".pyc", ".pm", ".pod", ".js", ".mjs", ".cjs", ".ts", ".map",
		".jar", ".class", ".jmod", ".jsa", ".a", ".o", ".html", ".css", ".svg", ".png", ".jpg", ".gif", ".ico",
		".ttf", ".otf", ".woff", ".woff2", ".gz", ".xz", ".bz2", ".zst", ".lz4", ".zip"}
	unreadDirs = []string{"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/i18n/", "usr/share/zoneinfo/",
		"usr/include/c++/", "usr/include/linux/", "usr/include/asm-generic/", "usr/include/x86_64-linux-gnu/", "usr/include/aarch64-linux-gnu/"}
)

// readAnyway are files among that bulk that a collector does read: the
// node collector dates a distribution's nodejs by its Debian changelog.
// Reading one back would decompress its layer again up to it.
var readAnyway = []string{"/share/doc/nodejs/changelog.Debian.gz"}

// keepable reports whether a file's contents may be kept in memory; name
// is clean and relative to the root.
func keepable(name string) bool {
	for _, s := range readAnyway {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	for _, s := range unreadSuffixes {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	for _, d := range unreadDirs {
		if strings.HasPrefix(name, d) {
			return false
		}
	}
	return true
}

// memTree is an image's file tree held in memory, built by streaming each
// layer once (memBuilder); it implements a Tree's reads. Nodes are never
// changed once built, except for contents loaded on demand.
type memTree struct {
	root   *mnode
	layers []blob
	log    *slog.Logger

	mu sync.Mutex // guards the contents of nodes, which reads may load, and loading
	// loading has a channel for each file being read back, closed when
	// done: the layer is read without mu held, so that reads of other
	// files go on meanwhile (reading back decompresses the layer up to
	// the file, seconds on a large one).
	loading map[*mnode]chan struct{}
	loaded  int // files read back from their layers, for the log
}

var _ fileSystem = (*memTree)(nil)

// mnode is one file, directory or link. Hard links share a node.
type mnode struct {
	mode     fs.FileMode // type and permission bits, as the layer says
	uid, gid int
	size     int64
	link     string            // symbolic link target
	kids     map[string]*mnode // directory entries
	// pieces are the parts of the contents kept: a whole file as one
	// piece, an ELF file's tables as several. data is the whole contents
	// once read back from the layer, or an empty file's.
	data   []byte
	pieces []piece
	// layer (from 0) and offset of the contents in its uncompressed tar
	// stream, to read them back.
	layer  int
	offset int64
}

// piece is n bytes of a file at off: b itself, or when packed b's s2
// block encoding. Most of what is kept is text and symbol tables, which
// s2 shrinks three- to fivefold for a few milliseconds of work, and a
// reader decodes only the pieces it reads.
type piece struct {
	off    int64
	n      int64
	b      []byte
	packed bool
}

// packMin is the smallest piece worth encoding.
const packMin = 512

// pack copies raw into a piece at off, encoded when that saves an eighth
// or more. enc is scratch space for the encoding, returned for reuse.
func pack(off int64, raw, enc []byte) (piece, []byte) {
	p := piece{off: off, n: int64(len(raw))}
	if len(raw) >= packMin {
		if need := s2.MaxEncodedLen(len(raw)); cap(enc) < need {
			enc = make([]byte, need)
		}
		e := s2.Encode(enc[:cap(enc)], raw)
		if len(e) <= len(raw)-len(raw)/8 {
			p.b, p.packed = bytes.Clone(e), true
			return p, enc
		}
	}
	p.b = bytes.Clone(raw)
	return p, enc
}

// memBuilder applies layers to a memTree with exactly the Extractor's
// rules, limits and refusals (and its error messages), on nodes instead
// of files.
type memBuilder struct {
	t       *memTree
	limits  limits
	layer   int
	entries int
	total   int64
	buf     []byte
	scratch []byte // an ELF file being streamed
	text    []byte // a file being kept whole
	enc     []byte // pack's scratch
	// kept and packed are the bytes of contents kept and what they take
	// in memory, for the log.
	kept, packed int64
	skipped      []snapshot.SkippedEntry
	seen         map[string]struct{}
	dirs         map[string]resolvedDir
}

type resolvedDir struct {
	n *mnode
	p string
}

func newMemBuilder(layers []blob, opts Options) *memBuilder {
	return &memBuilder{
		t:      &memTree{root: &mnode{mode: fs.ModeDir | 0o755, kids: map[string]*mnode{}}, layers: layers, log: opts.logger()},
		limits: newLimits(opts),
		buf:    make([]byte, 256<<10),
		dirs:   map[string]resolvedDir{},
	}
}

// countingReader counts the bytes read through it: archive/tar reads
// exactly the header blocks before an entry's data, so the count after
// Next is where the data starts.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// applyLayer reads the next layer's tar stream into the tree. Errors are
// worded as the Extractor's.
func (b *memBuilder) applyLayer(ctx context.Context, r io.Reader) error {
	b.layer++
	b.seen = map[string]struct{}{}
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	return eachEntry(ctx, tr, b.layer, &b.entries, b.limits.maxEntries, func(hdr *tar.Header) error {
		return b.apply(hdr, tr, cr.n)
	})
}

func (b *memBuilder) apply(hdr *tar.Header, tr *tar.Reader, offset int64) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			b.t.root.mode, b.t.root.uid, b.t.root.gid = fs.ModeDir|hdr.FileInfo().Mode().Perm()|special(hdr), hdr.Uid, hdr.Gid
		}
		return nil
	}
	dirLex, base := path.Split(name)
	dirLex = path.Clean(dirLex)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return b.whiteout(dirLex, base)
	}
	parent, pp, err := b.resolveDir(dirLex, true)
	if err != nil {
		return err
	}
	p := path.Join(pp, base)
	perm := hdr.FileInfo().Mode().Perm() | special(hdr)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if old := parent.kids[base]; old != nil && old.mode.IsDir() {
			old.mode, old.uid, old.gid = fs.ModeDir|perm, hdr.Uid, hdr.Gid
		} else {
			b.replace(parent, base, &mnode{mode: fs.ModeDir | perm, uid: hdr.Uid, gid: hdr.Gid, kids: map[string]*mnode{}})
		}
		b.seen[p] = struct{}{}
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont: //nolint:staticcheck // TypeRegA still occurs in old archives
		if hdr.Size > b.limits.maxFile {
			return fmt.Errorf("%w: file is %d bytes, over the %s per-file limit (raise it with --max-file-size)", ErrLimit, hdr.Size, bytesHuman(b.limits.maxFile))
		}
		n := &mnode{mode: perm, uid: hdr.Uid, gid: hdr.Gid, layer: b.layer - 1, offset: offset}
		if err := b.contents(n, tr, hdr.Size, keepable(p)); err != nil {
			return err
		}
		b.replace(parent, base, n)
		b.seen[p] = struct{}{}
		return nil
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return errors.New("symbolic link with an empty target")
		}
		b.replace(parent, base, &mnode{mode: fs.ModeSymlink | 0o777, uid: hdr.Uid, gid: hdr.Gid, link: hdr.Linkname, size: int64(len(hdr.Linkname))})
		b.seen[p] = struct{}{}
		return nil
	case tar.TypeLink:
		return b.hardlink(parent, base, p, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		b.replace(parent, base, nil)
		b.skipped = append(b.skipped, snapshot.SkippedEntry{Path: "/" + name, Reason: specialReason[hdr.Typeflag]})
		return nil
	default:
		b.skipped = append(b.skipped, snapshot.SkippedEntry{Path: "/" + name, Reason: fmt.Sprintf("unsupported tar entry type %q", hdr.Typeflag)})
		return nil
	}
}

func special(hdr *tar.Header) fs.FileMode {
	return hdr.FileInfo().Mode() & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// replace puts n (nil: nothing) at base in dir. Replacing anything but a
// regular file may change how paths resolve, so it forgets resolutions.
func (b *memBuilder) replace(dir *mnode, base string, n *mnode) {
	if old := dir.kids[base]; old != nil && !old.mode.IsRegular() {
		clear(b.dirs)
	}
	if n == nil {
		delete(dir.kids, base)
		return
	}
	dir.kids[base] = n
}

// contents reads a regular file's data, counting it against the limits,
// and keeps what the policy above says. An ELF file is never held whole
// meanwhile, whatever its size (elfCapture).
func (b *memBuilder) contents(n *mnode, r io.Reader, size int64, keepText bool) error {
	var elfc *elfCapture
	// The first bytes decide, and a read may return fewer than the ELF
	// magic's four at a chunk boundary: they wait in magic meanwhile.
	var magic []byte
	decided, whole := false, false
	decide := func() {
		decided = true
		switch {
		case bytes.HasPrefix(magic, []byte(elf.ELFMAG)):
			elfc = newELFCapture(size, b.scratch)
			elfc.write(magic)
		case keepText && size <= keepWhole:
			if int64(cap(b.text)) < size {
				b.text = make([]byte, 0, size)
			}
			b.text = append(b.text[:0], magic...)
			whole = true
		}
	}
	keep := func(p []byte) {
		if !decided {
			k := min(len(p), len(elf.ELFMAG)-len(magic))
			magic = append(magic, p[:k]...)
			p = p[k:]
			if len(magic) < len(elf.ELFMAG) {
				return
			}
			decide()
		}
		switch {
		case elfc != nil:
			elfc.write(p)
		case whole:
			b.text = append(b.text, p...)
		}
	}
	var got int64
	counted := func(p []byte) error { got += int64(len(p)); keep(p); return nil }
	if err := copyLimited(b.buf, &b.total, b.limits, r, counted); err != nil {
		return err
	}
	n.size = got
	if !decided {
		decide() // shorter than the ELF magic
	}
	var raw []piece
	switch {
	case got == 0:
		n.data = []byte{}
		return nil
	case elfc != nil:
		raw = elfc.pieces()
		b.scratch = elfc.prefix[:0] // reused by the next ELF file
	case whole:
		raw = []piece{{off: 0, n: got, b: b.text}}
	}
	for _, r := range raw {
		var p piece
		p, b.enc = pack(r.off, r.b, b.enc)
		n.pieces = append(n.pieces, p)
		b.kept += p.n
		b.packed += int64(len(p.b))
	}
	return nil
}

// resolveDir is the Extractor's resolveDir on nodes.
func (b *memBuilder) resolveDir(lex string, create bool) (*mnode, string, error) {
	if lex == "." {
		return b.t.root, ".", nil
	}
	if r, ok := b.dirs[lex]; ok {
		return r.n, r.p, nil
	}
	type step struct {
		name string
		n    *mnode
	}
	var resolved []step
	cur := func() *mnode {
		if len(resolved) == 0 {
			return b.t.root
		}
		return resolved[len(resolved)-1].n
	}
	join := func(extra string) string {
		parts := make([]string, 0, len(resolved)+1)
		for _, s := range resolved {
			parts = append(parts, s.name)
		}
		return path.Join(append(parts, extra)...)
	}
	todo := strings.Split(lex, "/")
	follows := 0
	via := ""
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) == 0 {
				return nil, "", fmt.Errorf("%w through %s", ErrUnsafeEntry, via)
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		p := join(c)
		n := cur().kids[c]
		switch {
		case n == nil:
			if !create {
				return nil, "", &fs.PathError{Op: "open", Path: "/" + p, Err: fs.ErrNotExist}
			}
			n = &mnode{mode: fs.ModeDir | 0o755, kids: map[string]*mnode{}}
			cur().kids[c] = n
			b.seen[p] = struct{}{}
			resolved = append(resolved, step{c, n})
		case n.mode.IsDir():
			resolved = append(resolved, step{c, n})
		case n.mode&fs.ModeSymlink != 0:
			follows++
			if follows > maxLinkFollows {
				return nil, "", fmt.Errorf("too many levels of symbolic links in %q", "/"+lex)
			}
			via = fmt.Sprintf("symbolic link %q -> %q", "/"+p, n.link)
			if strings.HasPrefix(n.link, "/") {
				resolved = resolved[:0]
			}
			todo = append(strings.Split(n.link, "/"), todo...)
		default:
			return nil, "", fmt.Errorf("/%s is not a directory", p)
		}
	}
	r := join("")
	if r == "" {
		r = "."
	}
	b.dirs[lex] = resolvedDir{cur(), r}
	return cur(), r, nil
}

func (b *memBuilder) hardlink(parent *mnode, base, p string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil || target == "." {
		return fmt.Errorf("%w: hard link to %q", ErrUnsafeEntry, hdr.Linkname)
	}
	tdir, tbase := path.Split(target)
	tparent, tpp, err := b.resolveDir(path.Clean(tdir), false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hard link target %q is not in the image", hdr.Linkname)
		}
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	n := tparent.kids[tbase]
	if n == nil {
		return fmt.Errorf("hard link target %q is not in the image", hdr.Linkname)
	}
	if n.mode.IsDir() {
		return fmt.Errorf("hard link target %q is a directory", hdr.Linkname)
	}
	if path.Join(tpp, tbase) == p {
		return nil
	}
	b.replace(parent, base, n)
	b.seen[p] = struct{}{}
	return nil
}

func (b *memBuilder) whiteout(dirLex, base string) error {
	if base == opaqueMarker {
		dir, dp, err := b.resolveDir(dirLex, true)
		if err != nil {
			return err
		}
		clear(b.dirs)
		b.opaque(dir, dp)
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout %q", base)
	}
	dir, dp, err := b.resolveDir(dirLex, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := b.seen[path.Join(dp, name)]; ok {
		return nil
	}
	clear(b.dirs)
	delete(dir.kids, name)
	return nil
}

func (b *memBuilder) opaque(dir *mnode, dp string) {
	for name, n := range dir.kids {
		p := path.Join(dp, name)
		if _, ok := b.seen[p]; !ok {
			delete(dir.kids, name)
			continue
		}
		if n.mode.IsDir() {
			b.opaque(n, p)
		}
	}
}

// streamImage reads every layer once into a memTree.
func streamImage(ctx context.Context, layers []blob, progress func(Event), opts Options) (*Tree, error) {
	b := newMemBuilder(layers, opts)
	started := time.Now()
	err := eachLayer(ctx, layers, progress, func(_ int, r io.Reader) error { return b.applyLayer(ctx, r) })
	if err != nil {
		return nil, err
	}
	b.t.log.Debug("streamed image into memory", "layers", len(layers), "entries", b.entries, "bytes", b.total, "kept", b.kept, "kept packed", b.packed, "elapsed", time.Since(started))
	return &Tree{RootFS: true, Skipped: sortSkipped(b.skipped), mem: b.t}, nil
}

// lookup finds name (clean, absolute) the way a process in the image
// would, following links on every component, or on all but the last
// without follow; ".." at the root stays there. It returns the node (nil
// with an error wrapping fs.ErrNotExist when something is missing) and
// the in-image path it reached, which for a missing file is the resolved
// parent plus the rest of name.
func (t *memTree) lookup(name string, follow bool) (*mnode, string, error) {
	type step struct {
		name string
		n    *mnode
	}
	var resolved []step
	cur := func() *mnode {
		if len(resolved) == 0 {
			return t.root
		}
		return resolved[len(resolved)-1].n
	}
	where := func(rest []string) string {
		parts := []string{"/"}
		for _, s := range resolved {
			parts = append(parts, s.name)
		}
		return path.Join(append(parts, rest...)...)
	}
	todo := strings.Split(strings.TrimPrefix(name, "/"), "/")
	follows := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			continue
		}
		if !cur().mode.IsDir() {
			return nil, where(append([]string{c}, todo...)), &fs.PathError{Op: "open", Path: name, Err: errNotDir}
		}
		n := cur().kids[c]
		if n == nil {
			return nil, where(append([]string{c}, todo...)), &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		if n.mode&fs.ModeSymlink != 0 && (follow || len(todo) > 0) {
			follows++
			if follows > 255 {
				return nil, where(append([]string{c}, todo...)), &fs.PathError{Op: "open", Path: name, Err: errLoop}
			}
			if strings.HasPrefix(n.link, "/") {
				resolved = resolved[:0]
			}
			todo = append(strings.Split(n.link, "/"), todo...)
			continue
		}
		resolved = append(resolved, step{c, n})
	}
	return cur(), where(nil), nil
}

// The os package's errors, so that callers test them alike on disk and in
// memory.
var (
	errNotDir = syscall.ENOTDIR
	errLoop   = syscall.ELOOP
	errIsDir  = syscall.EISDIR
)

func (t *memTree) resolve(name string) (string, error) {
	_, p, err := t.lookup(name, true)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("resolve %s: %w", name, err)
	}
	return p, nil
}

func (t *memTree) stat(name string) (fs.FileInfo, error) {
	n, _, err := t.lookup(name, true)
	if err != nil {
		return nil, err
	}
	return info{path.Base(name), n}, nil
}

func (t *memTree) lstat(name string) (fs.FileInfo, error) {
	n, _, err := t.lookup(name, false)
	if err != nil {
		return nil, err
	}
	return info{path.Base(name), n}, nil
}

func (t *memTree) readlink(name string) (string, error) {
	n, _, err := t.lookup(name, false)
	if err != nil {
		return "", err
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.link, nil
}

func (t *memTree) readDir(name string) ([]fs.DirEntry, error) {
	n, _, err := t.lookup(name, true)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdirent", Path: name, Err: errNotDir}
	}
	out := make([]fs.DirEntry, 0, len(n.kids))
	for k, c := range n.kids {
		out = append(out, fs.FileInfoToDirEntry(info{k, c}))
	}
	sortDirEntries(out)
	return out, nil
}

func (t *memTree) open(name string) (File, error) {
	n, _, err := t.lookup(name, true)
	if err != nil {
		return nil, err
	}
	return &memFile{t: t, n: n, name: name}, nil
}

// info is an mnode as fs.FileInfo.
type info struct {
	name string
	n    *mnode
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.n.size }
func (i info) Mode() fs.FileMode  { return i.n.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.n.mode.IsDir() }
func (i info) Sys() any           { return nil }

// memFile is an open mnode. Reads within the kept contents are served
// from memory; any other read loads the whole file from its layer once.
type memFile struct {
	t    *memTree
	n    *mnode
	name string
	off  int64
	// unpacked is the piece decoded last (its index plus one in
	// unpackedAt, 0 for none): readers of ELF and text files read one
	// piece in many small reads.
	unpacked   []byte
	unpackedAt int
}

var _ File = (*memFile)(nil)

func (f *memFile) Stat() (fs.FileInfo, error) { return info{path.Base(f.name), f.n}, nil }
func (f *memFile) Close() error               { f.unpacked, f.unpackedAt = nil, 0; return nil }

func (f *memFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.n.size
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	f.off = offset
	return offset, nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	n := f.n
	if n.mode.IsDir() {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errIsDir}
	}
	if off >= n.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), n.size-off)
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	for i, pc := range n.pieces {
		if off >= pc.off && off+want <= pc.off+pc.n {
			b, err := f.bytes(i)
			if err != nil {
				return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
			}
			k := copy(p, b[off-pc.off:off-pc.off+want])
			if int64(k) < int64(len(p)) {
				return k, io.EOF
			}
			return k, nil
		}
	}
	data, err := f.t.load(n, f.name)
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
	}
	k := copy(p, data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

// bytes returns piece i of the file, decoded. The caller holds mu.
func (f *memFile) bytes(i int) ([]byte, error) {
	pc := f.n.pieces[i]
	if !pc.packed {
		return pc.b, nil
	}
	if f.unpackedAt == i+1 {
		return f.unpacked, nil
	}
	if cap(f.unpacked) < int(pc.n) {
		f.unpacked = make([]byte, pc.n)
	}
	b, err := s2.Decode(f.unpacked[:cap(f.unpacked)], pc.b)
	if err != nil || int64(len(b)) != pc.n {
		return nil, fmt.Errorf("decode kept contents: %v", err)
	}
	f.unpacked, f.unpackedAt = b, i+1
	return b, nil
}

// load returns a file's whole contents, reading them back from the layer
// the first time a read falls outside what was kept. The caller holds mu;
// load releases it while reading the layer.
func (t *memTree) load(n *mnode, name string) ([]byte, error) {
	for n.data == nil {
		if ch, ok := t.loading[n]; ok {
			t.mu.Unlock()
			<-ch
			t.mu.Lock()
			continue // loaded, or failed and tried again here
		}
		ch := make(chan struct{})
		if t.loading == nil {
			t.loading = map[*mnode]chan struct{}{}
		}
		t.loading[n] = ch
		t.mu.Unlock()
		started := time.Now()
		data, err := readBack(t.layers[n.layer], n.offset, n.size)
		t.mu.Lock()
		delete(t.loading, n)
		close(ch)
		if err != nil {
			return nil, fmt.Errorf("read back from layer %d: %w", n.layer+1, err)
		}
		n.data, n.pieces = data, nil
		t.loaded++
		t.log.Debug("read a file back from its layer", "path", name, "layer", n.layer+1, "bytes", n.size, "elapsed", time.Since(started), "files read back", t.loaded)
	}
	return n.data, nil
}

// readBack reads size bytes at offset of a layer's uncompressed stream:
// in place when the layer is stored uncompressed and seekable, otherwise
// by decompressing it up to there.
func readBack(bl blob, offset, size int64) ([]byte, error) {
	rc, err := bl.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := make([]byte, size)
	if ra, ok := rc.(io.ReaderAt); ok {
		var magic [4]byte
		if _, err := ra.ReadAt(magic[:], 0); err == nil && !compressedMagic(magic[:]) {
			_, err := ra.ReadAt(out, offset)
			return out, err
		}
	}
	u, err := uncompressed(rc)
	if err != nil {
		return nil, err
	}
	defer u.Close()
	if _, err := io.CopyN(io.Discard, u, offset); err != nil {
		return nil, err
	}
	_, err = io.ReadFull(u, out)
	return out, err
}

func compressedMagic(m []byte) bool {
	return bytes.HasPrefix(m, []byte{0x1f, 0x8b}) || bytes.HasPrefix(m, []byte{0x28, 0xb5, 0x2f, 0xfd})
}
