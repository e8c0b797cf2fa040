package source

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// ErrNotOnDisk is wrapped by HostPath on a Tree held in memory (an image
// scanned with --exec none): its files are read through Open, ReadFile,
// ReadDir, Stat, Lstat and Readlink instead.
var ErrNotOnDisk = errors.New("the image is held in memory, not on disk")

// File is an open file of a Tree. ReadAt and Seek are there for readers of
// binary formats (ELF, Berkeley DB) that jump around a file.
type File interface {
	fs.File
	io.ReaderAt
	io.Seeker
}

var _ File = (*os.File)(nil)

// fileSystem is how a Tree reads its files: names are clean, absolute
// in-image paths. Symbolic links resolve inside the image (an absolute
// target starts at the image's root, ".." stops there), on every
// component for open, stat and readDir and on all but the last for lstat
// and readlink. Errors wrap fs.ErrNotExist, fs.ErrInvalid and the like as
// the os package's do. Implementations must be safe for concurrent use.
type fileSystem interface {
	open(name string) (File, error)
	stat(name string) (fs.FileInfo, error)
	lstat(name string) (fs.FileInfo, error)
	readDir(name string) ([]fs.DirEntry, error)
	readlink(name string) (string, error)
}

// inImage cleans a path given in image terms ("usr/bin", "/usr/bin/").
func inImage(name string) string { return path.Clean("/" + name) }

func (t *Tree) files() fileSystem {
	if t.mem != nil {
		return t.mem
	}
	return hostFiles{t}
}

// Open opens the file at the in-image path name, following symbolic links
// inside the image. The caller closes it.
func (t *Tree) Open(name string) (File, error) { return t.files().open(inImage(name)) }

// ReadFile reads the whole file at the in-image path name.
func (t *Tree) ReadFile(name string) ([]byte, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// ReadDir lists the directory at the in-image path name, sorted by name,
// following symbolic links to it; its entries' links are not followed.
func (t *Tree) ReadDir(name string) ([]fs.DirEntry, error) {
	return t.files().readDir(inImage(name))
}

// Stat describes the file at the in-image path name, following links.
func (t *Tree) Stat(name string) (fs.FileInfo, error) { return t.files().stat(inImage(name)) }

// Lstat describes the file at the in-image path name; a final symbolic
// link is described itself.
func (t *Tree) Lstat(name string) (fs.FileInfo, error) { return t.files().lstat(inImage(name)) }

// Readlink returns the target of the symbolic link at the in-image path
// name, exactly as stored.
func (t *Tree) Readlink(name string) (string, error) { return t.files().readlink(inImage(name)) }

// Glob returns the in-image paths matching pattern (path.Match syntax in
// any element), sorted, like filepath.Glob but inside the image and with
// links followed there.
func (t *Tree) Glob(pattern string) ([]string, error) {
	pattern = inImage(pattern)
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	matches := []string{"/"}
	for _, el := range strings.Split(strings.TrimPrefix(pattern, "/"), "/") {
		var next []string
		for _, dir := range matches {
			if !strings.ContainsAny(el, `*?[\`) {
				if _, err := t.Lstat(path.Join(dir, el)); err == nil {
					next = append(next, path.Join(dir, el))
				}
				continue
			}
			ents, err := t.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if ok, _ := path.Match(el, e.Name()); ok {
					next = append(next, path.Join(dir, e.Name()))
				}
			}
		}
		matches = next
	}
	slices.Sort(matches)
	return matches, nil
}

// Libraries is the tree shared-library paths (RPATH, ld.so.conf,
// /usr/lib) resolve against: the tree itself for a root filesystem, this
// machine for a tool folder, whose programs are built to run here.
func (t *Tree) Libraries() *Tree {
	if t.RootFS || t.Dir == "/" {
		return t
	}
	return &Tree{Spec: SchemeHost, Dir: "/", RootFS: true}
}

// hostFiles reads a Tree that is a directory on this machine.
type hostFiles struct{ t *Tree }

var _ fileSystem = hostFiles{}

func (h hostFiles) open(name string) (File, error) {
	p, err := h.t.HostPath(name)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

func (h hostFiles) stat(name string) (fs.FileInfo, error) {
	p, err := h.t.HostPath(name)
	if err != nil {
		return nil, err
	}
	return os.Stat(p)
}

// parent maps all but the last component of name to this machine.
func (h hostFiles) parent(name string) (string, error) {
	if name == "/" {
		return h.t.HostPath("/")
	}
	dir, base := path.Split(name)
	p, err := h.t.HostPath(dir)
	if err != nil {
		return "", err
	}
	return p + "/" + base, nil
}

func (h hostFiles) lstat(name string) (fs.FileInfo, error) {
	p, err := h.parent(name)
	if err != nil {
		return nil, err
	}
	return os.Lstat(p)
}

func (h hostFiles) readDir(name string) ([]fs.DirEntry, error) {
	p, err := h.t.HostPath(name)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(p)
}

func (h hostFiles) readlink(name string) (string, error) {
	p, err := h.parent(name)
	if err != nil {
		return "", err
	}
	return os.Readlink(p)
}

// sortDirEntries orders entries by name, as os.ReadDir does.
func sortDirEntries(ents []fs.DirEntry) {
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
}

// FS is the tree as an fs.FS (names relative to the image's root, as
// io/fs wants them), for fs.WalkDir and the like.
func (t *Tree) FS() fs.FS { return treeFS{t} }

type treeFS struct{ t *Tree }

var (
	_ fs.ReadDirFS = treeFS{}
	_ fs.StatFS    = treeFS{}
)

func (f treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return f.t.Open(name)
}

func (f treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	return f.t.ReadDir(name)
}

func (f treeFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	return f.t.Stat(name)
}
