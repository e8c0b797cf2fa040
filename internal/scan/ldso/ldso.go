// Package ldso finds the shared libraries an ELF file needs the way the
// dynamic loader would, but inside an image root on this machine: every
// absolute library path (RPATH, RUNPATH, ld.so.conf, the default
// directories) and every symbolic link on the way is taken inside the root,
// never on the host.
//
// It answers one question for the scan: which DT_NEEDED sonames would fail
// with "cannot open shared object file" when the file is loaded. It does not
// model symbol versions, hwcaps subdirectories or LD_LIBRARY_PATH, none of
// which make a library disappear.
package ldso

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/imagegate/imagegate/internal/source"
)

// maxIncludeDepth bounds ld.so.conf include recursion, which a hostile or
// broken image could make cyclic.
const maxIncludeDepth = 8

// maxObjects bounds one Missing walk; real dependency trees have dozens.
const maxObjects = 4096

// Resolver finds the shared libraries an ELF file needs inside root. It is
// safe for concurrent use; parsed ELF files and directory lookups are cached
// for its lifetime, so one Resolver should serve a whole scan of one root and
// be dropped with it (the cache assumes the files do not change meanwhile).
type Resolver struct {
	root string       // for messages
	lib  *source.Tree // where the libraries are
	// confDirs are the ld.so.conf directories (in-root), in file order; they
	// stand in for ld.so.cache, which ldconfig builds from them.
	confDirs []string

	mu      sync.Mutex
	objects map[objectKey]*objectEntry // parsed ELF files
	// lookups caches in-root candidate path → whether it is a regular
	// file, so each is resolved inside root only once.
	lookups sync.Map
}

type objectKey struct {
	t *source.Tree
	p string
}

// onHost reads files by their paths on this machine.
var onHost = &source.Tree{Spec: source.SchemeHost, Dir: "/", RootFS: true}

type objectEntry struct {
	once sync.Once
	obj  *Object
	err  error
}

// Object is what the loader needs to know about one ELF file.
type Object struct {
	Class   elf.Class
	Machine elf.Machine
	Needed  []string
	RPath   []string
	RunPath []string
	// HasRunPath is set when DT_RUNPATH is present, even if empty: its
	// presence alone disables DT_RPATH.
	HasRunPath bool
}

// NewResolver reads root/etc/ld.so.conf (and the files its include lines
// name) and musl's root/etc/ld-musl-*.path, resolving every path inside root.
// A missing ld.so.conf is not an error: many images have none.
func NewResolver(ctx context.Context, root string) (*Resolver, error) {
	if root == "/" {
		return NewTreeResolver(ctx, onHost)
	}
	return NewTreeResolver(ctx, &source.Tree{Dir: root, RootFS: true})
}

// NewTreeResolver is NewResolver for the libraries of a tree (which
// source.Tree.Libraries gives), on disk or in memory.
func NewTreeResolver(ctx context.Context, lib *source.Tree) (*Resolver, error) {
	root := lib.Dir
	if root == "" {
		root = lib.Spec
	}
	r := &Resolver{root: root, lib: lib, objects: map[objectKey]*objectEntry{}}
	seen := map[string]bool{}
	if err := r.readConf(ctx, "/etc/ld.so.conf", 0, seen); err != nil {
		return nil, err
	}
	musl, err := lib.Glob("/etc/ld-musl-*.path")
	if err != nil {
		return nil, fmt.Errorf("list musl loader paths in %s: %w", root, err)
	}
	for _, m := range musl {
		b, err := lib.ReadFile(m)
		if err != nil {
			continue
		}
		for _, f := range strings.FieldsFunc(string(b), func(c rune) bool { return c == ':' || c == '\n' || c == ' ' || c == '\t' }) {
			if strings.HasPrefix(f, "/") {
				r.confDirs = append(r.confDirs, path.Clean(f))
			}
		}
	}
	return r, nil
}

func (r *Resolver) readConf(ctx context.Context, inRoot string, depth int, seen map[string]bool) error {
	if depth > maxIncludeDepth || seen[inRoot] {
		return nil
	}
	seen[inRoot] = true
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := r.lib.Open(inRoot)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
			return nil
		}
		return fmt.Errorf("read %s in %s: %w", inRoot, r.root, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil
	}
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "include":
			for _, pattern := range fields[1:] {
				if !strings.HasPrefix(pattern, "/") {
					pattern = path.Join(path.Dir(inRoot), pattern)
				}
				for _, inc := range r.glob(pattern) {
					if err := r.readConf(ctx, inc, depth+1, seen); err != nil {
						return err
					}
				}
			}
		case "hwcap":
			// Obsolete hardware-capability lines name no directory.
		default:
			for _, d := range fields {
				// ldconfig accepts "dir=TYPE" and comma separators.
				for _, part := range strings.Split(d, ",") {
					part, _, _ = strings.Cut(part, "=")
					if strings.HasPrefix(part, "/") {
						r.confDirs = append(r.confDirs, path.Clean(part))
					}
				}
			}
		}
	}
	return nil
}

// glob expands a pattern whose last element may hold wildcards, inside
// root, returning in-root paths in lexical order (as ldconfig does).
func (r *Resolver) glob(pattern string) []string {
	matches, err := r.lib.Glob(path.Clean(pattern))
	if err != nil {
		return nil
	}
	return matches
}

// ConfDirs returns the directories ld.so.conf names, in-root, in order.
func (r *Resolver) ConfDirs() []string { return append([]string(nil), r.confDirs...) }

// Object parses the ELF at hostPath (cached). Malformed files, including
// ones that make debug/elf panic, come back as errors.
func (r *Resolver) Object(hostPath string) (*Object, error) { return r.ObjectIn(onHost, hostPath) }

// ObjectIn is Object for the file at p inside t.
func (r *Resolver) ObjectIn(t *source.Tree, p string) (*Object, error) {
	k := objectKey{t, p}
	r.mu.Lock()
	e, ok := r.objects[k]
	if !ok {
		e = &objectEntry{}
		r.objects[k] = e
	}
	r.mu.Unlock()
	e.once.Do(func() {
		f, err := t.Open(p)
		if err != nil {
			e.err = err
			return
		}
		defer f.Close()
		e.obj, e.err = ReadObject(f)
		if e.err != nil {
			e.err = fmt.Errorf("read ELF %s: %w", p, e.err)
		}
	})
	return e.obj, e.err
}

// ReadObject reads the dynamic-loading facts of one ELF file. It never
// panics: debug/elf can on hostile input, and that is returned as an error.
func ReadObject(ra io.ReaderAt) (obj *Object, err error) {
	defer func() {
		if p := recover(); p != nil {
			obj, err = nil, fmt.Errorf("malformed ELF: %v", p)
		}
	}()
	f, err := elf.NewFile(ra)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o := &Object{Class: f.Class, Machine: f.Machine}
	if f.Section(".dynamic") == nil && dynProg(f) == nil {
		return o, nil // static executable or plain object
	}
	if o.Needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return nil, fmt.Errorf("DT_NEEDED: %w", err)
	}
	rpath, err := f.DynString(elf.DT_RPATH)
	if err != nil {
		return nil, fmt.Errorf("DT_RPATH: %w", err)
	}
	runpath, err := f.DynString(elf.DT_RUNPATH)
	if err != nil {
		return nil, fmt.Errorf("DT_RUNPATH: %w", err)
	}
	o.RPath = splitPath(rpath)
	o.RunPath = splitPath(runpath)
	o.HasRunPath = len(runpath) > 0
	return o, nil
}

func dynProg(f *elf.File) *elf.Prog {
	for _, p := range f.Progs {
		if p.Type == elf.PT_DYNAMIC {
			return p
		}
	}
	return nil
}

func splitPath(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, d := range strings.Split(v, ":") {
			if d != "" {
				out = append(out, d)
			}
		}
	}
	return out
}

// Missing returns the DT_NEEDED sonames, transitively, that would not be
// found when the ELF at hostPath is loaded; nil when all resolve.
//
// origin is the directory that $ORIGIN stands for, as a path inside root
// (callers pass it because tool folders are scanned away from where they
// will run; for a file inside the root it is simply its in-root directory).
// extraDirs (in-root) are searched after everything else: they model
// libraries a host process has already loaded, such as the interpreter's
// libpython for a Python extension.
//
// The error is non-nil only when hostPath itself cannot be read as ELF; a
// dependency that is present but unreadable, or of another ELF class or
// machine, is skipped as the loader would skip it.
func (r *Resolver) Missing(hostPath, origin string, extraDirs ...string) ([]string, error) {
	return r.MissingIn(onHost, hostPath, origin, extraDirs...)
}

// MissingIn is Missing for the file at p inside t; its dependencies are
// still looked for among the resolver's libraries.
func (r *Resolver) MissingIn(t *source.Tree, p, origin string, extraDirs ...string) ([]string, error) {
	top, err := r.ObjectIn(t, p)
	if err != nil {
		return nil, err
	}
	type node struct {
		obj    *Object
		origin string
		parent *node
	}
	loaded := map[string]bool{}
	var missing []string
	queue := []*node{{obj: top, origin: origin}}
	// The loader maps dependencies breadth first; a soname already mapped
	// satisfies later requests for it without a search.
	for n := 0; len(queue) > 0 && n < maxObjects; n++ {
		cur := queue[0]
		queue = queue[1:]
		for _, soname := range cur.obj.Needed {
			if loaded[soname] {
				continue
			}
			loaded[soname] = true
			var dirs []string
			if !cur.obj.HasRunPath {
				for l := cur; l != nil; l = l.parent {
					if !l.obj.HasRunPath {
						dirs = append(dirs, r.expand(l.obj.RPath, l.origin, l.obj)...)
					}
				}
			}
			dirs = append(dirs, r.expand(cur.obj.RunPath, cur.origin, cur.obj)...)
			dirs = append(dirs, r.confDirs...)
			dirs = append(dirs, defaultDirs(top)...)
			dirs = append(dirs, extraDirs...)
			name := soname
			if strings.Contains(name, "$") {
				// The loader expands the tokens in DT_NEEDED too: bundled
				// interpreters need "$ORIGIN/../lib/libpython3.12.so.1.0".
				exp := r.expand([]string{name}, cur.origin, cur.obj)
				if len(exp) == 0 {
					missing = append(missing, soname)
					continue
				}
				name = exp[0]
			}
			found, inRoot := r.find(name, dirs, top)
			if found == nil {
				missing = append(missing, soname)
				continue
			}
			queue = append(queue, &node{obj: found, origin: path.Dir(inRoot), parent: cur})
		}
	}
	return missing, nil
}

// find looks soname up in dirs (in-root) and returns the first file of the
// same ELF class and machine as want, with its in-root path.
func (r *Resolver) find(soname string, dirs []string, want *Object) (*Object, string) {
	if strings.Contains(soname, "/") {
		dirs = []string{""}
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		cand := path.Join("/", d, soname)
		if seen[cand] {
			continue
		}
		seen[cand] = true
		if !r.regularFile(cand) {
			continue
		}
		o, err := r.ObjectIn(r.lib, cand)
		if err != nil || o.Class != want.Class || o.Machine != want.Machine {
			continue
		}
		return o, cand
	}
	return nil, ""
}

func (r *Resolver) regularFile(inRoot string) bool {
	if v, ok := r.lookups.Load(inRoot); ok {
		return v.(bool)
	}
	st, err := r.lib.Stat(inRoot)
	ok := err == nil && st.Mode().IsRegular()
	r.lookups.Store(inRoot, ok)
	return ok
}

// expand substitutes the loader's dynamic string tokens. $LIB has no single
// value across distributions (Debian "lib/x86_64-linux-gnu", Fedora
// "lib64"), so a path using it expands to every candidate.
func (r *Resolver) expand(dirs []string, origin string, o *Object) []string {
	var out []string
	for _, d := range dirs {
		d = strings.NewReplacer("${ORIGIN}", origin, "$ORIGIN", origin,
			"${PLATFORM}", platform(o), "$PLATFORM", platform(o)).Replace(d)
		if strings.Contains(d, "$LIB") || strings.Contains(d, "${LIB}") {
			for _, lib := range libNames(o) {
				out = append(out, strings.NewReplacer("${LIB}", lib, "$LIB", lib).Replace(d))
			}
			continue
		}
		if !strings.HasPrefix(d, "/") {
			// A relative RPATH is relative to the process's working
			// directory, unknowable here; the loader would most likely miss.
			continue
		}
		out = append(out, d)
	}
	return out
}

func triplet(o *Object) string {
	switch o.Machine {
	case elf.EM_X86_64:
		if o.Class == elf.ELFCLASS32 {
			return "x86_64-linux-gnux32"
		}
		return "x86_64-linux-gnu"
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu"
	case elf.EM_386:
		return "i386-linux-gnu"
	case elf.EM_ARM:
		return "arm-linux-gnueabihf"
	case elf.EM_PPC64:
		return "powerpc64le-linux-gnu"
	case elf.EM_S390:
		return "s390x-linux-gnu"
	case elf.EM_RISCV:
		return "riscv64-linux-gnu"
	}
	return ""
}

func platform(o *Object) string {
	switch o.Machine {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_386:
		return "i686"
	}
	return strings.ToLower(strings.TrimPrefix(o.Machine.String(), "EM_"))
}

func libNames(o *Object) []string {
	names := []string{}
	if t := triplet(o); t != "" {
		names = append(names, "lib/"+t)
	}
	if o.Class == elf.ELFCLASS64 {
		return append(names, "lib64", "lib")
	}
	return append(names, "lib32", "lib")
}

// defaultDirs are the trusted directories searched last: the multiarch
// ones Debian's loader adds, then the ones glibc and musl use.
func defaultDirs(o *Object) []string {
	var dirs []string
	if t := triplet(o); t != "" {
		dirs = append(dirs, "/lib/"+t, "/usr/lib/"+t)
	}
	if o.Class == elf.ELFCLASS64 {
		dirs = append(dirs, "/lib64", "/usr/lib64")
	} else {
		dirs = append(dirs, "/lib32", "/usr/lib32")
	}
	return append(dirs, "/lib", "/usr/local/lib", "/usr/lib")
}

// NotFoundError is the loader's own wording for a soname it cannot find,
// which is also what Python's ImportError says for such an extension.
func NotFoundError(soname string) string {
	return soname + ": cannot open shared object file: No such file or directory"
}
