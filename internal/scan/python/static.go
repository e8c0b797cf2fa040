package python

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/internal/cpython"
	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// Module kinds.
const (
	kindBuiltin   = snapshot.ModuleBuiltin
	kindExtension = snapshot.ModuleExtension
	kindPure      = snapshot.ModulePure
	kindPackage   = snapshot.ModulePackage
	kindOpaque    = "opaque" // an attribute-like submodule (os.path): not checked
	kindAbsent    = ""
)

// maxSourceSize bounds what is read of one .py file; the standard library's
// largest is well under 1 MiB.
const maxSourceSize = 4 << 20

// frozen are modules that live inside the interpreter without being in
// sys.builtin_module_names.
var frozen = map[string]bool{"_frozen_importlib": true, "_frozen_importlib_external": true}

// coreBuiltins are built into every CPython on Linux; they stand in for the
// symbol table when the interpreter binary cannot be read.
var coreBuiltins = []string{"sys", "builtins", "__builtin__", "_imp", "marshal", "_warnings", "posix", "_io", "_thread", "thread", "_weakref", "_codecs", "_sre", "_signal", "signal", "errno", "gc", "itertools", "_abc", "_ast", "_collections", "_functools", "_locale", "_operator", "_stat", "_string", "_symtable", "_tracemalloc", "atexit", "faulthandler", "pwd", "time", "zipimport", "_tokenize", "_typing", "_suggestions", "_sysconfig", "exceptions", "imp"}

// modInfo is one top-level module as the installation ships it.
type modInfo struct {
	kind string
	file string // entry file (.py, __init__.py) or extension (.so), in the image
	dir  string // package directory, in the image
}

type verdict struct {
	err  string
	libs []string
}

// analysis is the static view of one installation.
type analysis struct {
	t   *source.Tree
	res *ldso.Resolver
	in  *install
	exe string // in-image interpreter, "" if none
	py2 bool

	lib      string   // the standard library's directory, in the image
	paths    []string // dirs searched for pure modules, in sys.path order, in the image
	top      map[string]*modInfo
	builtins map[string]bool
	expected map[string]bool
	memo     map[string]*verdict
	lookups  map[string]*modInfo
	static   map[string]*verdict // per top-level module, for evidence after a sweep
	warnings []string
}

func newAnalysis(t *source.Tree, res *ldso.Resolver, in *install, exe string) *analysis {
	return &analysis{t: t, res: res, in: in, exe: exe, py2: strings.HasPrefix(in.xy, "2."),
		top: map[string]*modInfo{}, builtins: map[string]bool{}, expected: map[string]bool{},
		memo: map[string]*verdict{}, lookups: map[string]*modInfo{}, static: map[string]*verdict{}}
}

// libCoord turns an in-image path into the coordinates of the library
// root: the same path for root filesystems, the file on this machine for
// tool folders (whose libraries come from this machine).
func (a *analysis) libCoord(inImage string) string {
	if a.t.RootFS || a.t.Dir == "/" {
		return inImage
	}
	h, err := a.t.HostPath(inImage)
	if err != nil {
		return inImage
	}
	return h
}

// run inventories the installation and gives every module its static
// status.
func (a *analysis) run() (map[string]*snapshot.Module, []string) {
	lib := path.Join(a.in.prefix, a.in.libRel)
	a.lib = lib
	a.paths = []string{lib}
	if a.py2 {
		plat, _ := a.t.Glob(path.Join(lib, "plat-*"))
		a.paths = append(a.paths, plat...)
		a.paths = append(a.paths, path.Join(lib, "lib-tk"))
	}
	for i := len(a.paths) - 1; i >= 0; i-- { // earlier path entries win
		a.listPure(a.paths[i])
	}
	a.listExtensions(path.Join(lib, "lib-dynload"))
	a.findBuiltins()
	exp, known := cpython.ExpectedModules(a.in.xy)
	for _, m := range exp {
		a.expected[m] = true
	}
	if !known {
		a.warnings = append(a.warnings, fmt.Sprintf("python %s %s: no expected standard-library list for %s; modules absent from the files are not reported", a.in.prefix, a.in.xy, a.in.xy))
	}

	mods := map[string]*snapshot.Module{}
	for name, info := range a.top {
		if a.builtins[name] {
			continue // the built-in wins over a file of the same name
		}
		v := a.verdict(name)
		a.static[name] = v
		m := &snapshot.Module{Name: name, Kind: info.kind, Status: snapshot.StatusOK}
		if v.err != "" {
			m.Status, m.Error, m.MissingLibraries = snapshot.StatusBroken, v.err, v.libs
		}
		mods[name] = m
	}
	for name := range a.builtins {
		mods[name] = &snapshot.Module{Name: name, Kind: kindBuiltin, Status: snapshot.StatusOK}
	}
	for name := range a.expected {
		if _, ok := mods[name]; ok || cpython.PlatformOnly(name) {
			continue
		}
		if frozen[name] {
			mods[name] = &snapshot.Module{Name: name, Kind: kindBuiltin, Status: snapshot.StatusOK}
			continue
		}
		mods[name] = &snapshot.Module{Name: name, Status: snapshot.StatusMissing, Error: a.noModule(name)}
	}
	return mods, a.warnings
}

func (a *analysis) listPure(dir string) {
	entries, err := a.t.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".py") && !e.IsDir():
			if n := strings.TrimSuffix(name, ".py"); identifier(n) {
				a.top[n] = &modInfo{kind: kindPure, file: path.Join(dir, name)}
			}
		case identifier(name) && name != "__pycache__" && (e.IsDir() || e.Type()&fs.ModeSymlink != 0):
			d := path.Join(dir, name)
			if init := path.Join(d, "__init__.py"); a.isFile(init) {
				a.top[name] = &modInfo{kind: kindPackage, file: init, dir: d}
			}
		}
	}
}

func (a *analysis) listExtensions(dir string) {
	entries, err := a.t.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		// setup.py renames an extension that built but failed to import to
		// *_failed.so: it is not importable under its name.
		if !strings.HasSuffix(name, ".so") || strings.HasSuffix(name, "_failed.so") {
			continue
		}
		n, _, _ := strings.Cut(name, ".")
		if !identifier(n) {
			continue
		}
		if _, ok := a.top[n]; ok {
			continue // a .py earlier on sys.path shadows it
		}
		a.top[n] = &modInfo{kind: kindExtension, file: path.Join(dir, name)}
	}
}

// isFile reports whether the in-image path p is a regular file, links
// followed inside the image.
func (a *analysis) isFile(p string) bool { return isFile(a.t, p) }

func isFile(t *source.Tree, p string) bool {
	st, err := t.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

var configEntry = regexp.MustCompile(`\{"([A-Za-z_][A-Za-z0-9_]*)",`)

// findBuiltins finds the modules compiled into the interpreter: the
// inittab of config-*/config.c when the installation has one, and the
// module init functions (PyInit_X, Python 2's initX) the interpreter binary
// or its libpython defines, which also covers distributions that ship no
// config.c.
func (a *analysis) findBuiltins() {
	if cfgs := a.configC(); len(cfgs) > 0 {
		if b, err := a.t.ReadFile(cfgs[0]); err == nil {
			for _, m := range configEntry.FindAllSubmatch(b, -1) {
				a.builtins[string(m[1])] = true
			}
		}
	}
	found := false
	for _, bin := range a.interpreterBinaries() {
		syms, err := definedSymbols(bin.t, bin.path)
		if err != nil {
			continue
		}
		found = true
		for s := range syms {
			if n, ok := strings.CutPrefix(s, "PyInit_"); ok && !a.py2 && identifier(n) {
				a.builtins[n] = true
			}
		}
		if a.py2 {
			exp, _ := cpython.ExpectedModules(a.in.xy)
			for _, n := range append(exp, coreBuiltins...) {
				if syms["init"+n] {
					a.builtins[n] = true
				}
			}
		}
	}
	if !found && len(a.builtins) == 0 {
		for _, n := range coreBuiltins {
			a.builtins[n] = true
		}
	}
	// These are set up by the interpreter itself, with no init function
	// of the usual name.
	always := []string{"sys", "marshal", "_warnings", "__main__", "builtins", "_imp"}
	if a.py2 {
		always = []string{"sys", "marshal", "_warnings", "__main__", "__builtin__", "exceptions", "imp"}
	}
	for _, n := range always {
		a.builtins[n] = true
	}
}

// interpreterBinaries returns the interpreter and the libpython it links
// against: the first in the image, the second in the image under the
// prefix or where the shared libraries are.
func (a *analysis) interpreterBinaries() []treeFile {
	if a.exe == "" {
		return nil
	}
	out := []treeFile{{a.t, a.exe}}
	obj, err := a.res.ObjectIn(a.t, a.exe)
	if err != nil {
		return out
	}
	libs := a.t.Libraries()
	for _, n := range obj.Needed {
		if !strings.HasPrefix(n, "libpython") {
			continue
		}
		for _, dir := range []string{path.Join(a.in.prefix, "lib"), "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"} {
			f := treeFile{libs, path.Join(dir, n)}
			if strings.HasPrefix(dir, a.in.prefix) {
				f.t = a.t
			}
			if isFile(f.t, f.path) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// treeFile is a file of one of the trees a scan reads: the image, or this
// machine for the libraries of a tool folder.
type treeFile struct {
	t    *source.Tree
	path string
}

// configC finds config-*/config.c in the standard library.
func (a *analysis) configC() []string {
	dirs, _ := a.t.Glob(path.Join(a.lib, "config-*"))
	var out []string
	for _, d := range dirs {
		if c := path.Join(d, "config.c"); a.isFile(c) {
			out = append(out, c)
		}
	}
	return out
}

func definedSymbols(t *source.Tree, p string) (map[string]bool, error) {
	f, err := t.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readSymbols(f, p)
}

func readSymbols(f io.ReaderAt, name string) (syms map[string]bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			syms, err = nil, fmt.Errorf("malformed ELF %s: %v", name, r)
		}
	}()
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, err
	}
	ds, err := ef.DynamicSymbols()
	if err != nil {
		return nil, err
	}
	syms = map[string]bool{}
	for _, s := range ds {
		if s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			syms[s.Name] = true
		}
	}
	return syms, nil
}

// noModule is the interpreter's own wording for a module it cannot find.
func (a *analysis) noModule(name string) string { return cpython.ModuleNotFound(name, a.py2) }

// lookup finds a module by its full dotted name. A submodule of something
// that is not a package (os.path) is opaque: it is made at run time.
func (a *analysis) lookup(full string) *modInfo {
	if m, ok := a.lookups[full]; ok {
		return m
	}
	m := a.lookupUncached(full)
	a.lookups[full] = m
	return m
}

func (a *analysis) lookupUncached(full string) *modInfo {
	parts := strings.Split(full, ".")
	var cur *modInfo
	if a.builtins[parts[0]] || frozen[parts[0]] {
		cur = &modInfo{kind: kindBuiltin}
	} else if cur = a.top[parts[0]]; cur == nil {
		return &modInfo{kind: kindAbsent}
	}
	for _, p := range parts[1:] {
		if cur.kind != kindPackage {
			return &modInfo{kind: kindOpaque}
		}
		switch {
		case a.isFile(path.Join(cur.dir, p+".py")):
			cur = &modInfo{kind: kindPure, file: path.Join(cur.dir, p+".py")}
		case a.isFile(path.Join(cur.dir, p, "__init__.py")):
			cur = &modInfo{kind: kindPackage, file: path.Join(cur.dir, p, "__init__.py"), dir: path.Join(cur.dir, p)}
		default:
			if so, _ := a.t.Glob(path.Join(cur.dir, p+".*.so")); len(so) > 0 {
				cur = &modInfo{kind: kindExtension, file: so[0]}
			} else if a.isFile(path.Join(cur.dir, p+".so")) {
				cur = &modInfo{kind: kindExtension, file: path.Join(cur.dir, p+".so")}
			} else if registersSubmodule(a.t, cur.file, full) {
				return &modInfo{kind: kindOpaque}
			} else {
				return &modInfo{kind: kindAbsent}
			}
		}
	}
	return cur
}

// verdict says whether importing full would fail, following unconditional
// imports through the standard library. Import cycles count as fine, as
// they do in Python once the first module is in sys.modules.
func (a *analysis) verdict(full string) *verdict {
	if v, ok := a.memo[full]; ok {
		return v
	}
	v := &verdict{}
	a.memo[full] = v // in progress: a cycle back here sees "fine"
	if i := strings.LastIndexByte(full, '.'); i > 0 {
		if pv := a.verdict(full[:i]); pv.err != "" {
			*v = *pv
			return v
		}
	}
	info := a.lookup(full)
	switch info.kind {
	case kindExtension:
		origin := a.libCoord(path.Dir(info.file))
		missing, err := a.res.MissingIn(a.t, info.file, origin, a.libCoord(path.Join(a.in.prefix, "lib")))
		if err != nil {
			v.err = fmt.Sprintf("invalid ELF file: %v", err)
		} else if len(missing) > 0 {
			v.err, v.libs = ldso.NotFoundError(missing[0]), missing
		}
	case kindPure, kindPackage:
		*v = *a.fileVerdict(info, full)
	case kindAbsent:
		v.err = a.noModule(full)
	}
	return v
}

func (a *analysis) fileVerdict(info *modInfo, full string) *verdict {
	src, err := readLimited(a.t, info.file)
	if err != nil {
		return &verdict{} // unreadable here says nothing about the import
	}
	pkg := full // the package relative imports start from
	if info.kind != kindPackage {
		if i := strings.LastIndexByte(full, '.'); i > 0 {
			pkg = full[:i]
		} else {
			pkg = ""
		}
	}
	for _, imp := range TopLevelImports(src) {
		if imp.Module == "__future__" {
			continue
		}
		base := imp.Module
		if imp.Level > 0 {
			p := pkg
			for range imp.Level - 1 {
				if i := strings.LastIndexByte(p, '.'); i > 0 {
					p = p[:i]
				} else {
					p = ""
				}
			}
			if p == "" {
				continue // beyond the top: Python raises, but not for a missing module
			}
			base = strings.TrimSuffix(p+"."+imp.Module, ".")
		} else if a.py2 && pkg != "" {
			// Python 2 tries an implicit relative import first.
			first, _, _ := strings.Cut(imp.Module, ".")
			if a.lookup(pkg+"."+first).kind != kindAbsent {
				base = pkg + "." + imp.Module
			}
		}
		if v := a.need(base); v != nil {
			return v
		}
		for _, n := range imp.Names {
			sub := base + "." + n
			if k := a.lookup(sub).kind; k != kindAbsent && k != kindOpaque {
				if v := a.need(sub); v != nil {
					return v
				}
			}
		}
	}
	return &verdict{}
}

// need returns the failure that importing name would cause, or nil. A
// top-level name that is neither shipped nor expected for this version is
// not the standard library's concern (an optional third-party import).
func (a *analysis) need(name string) *verdict {
	top, _, _ := strings.Cut(name, ".")
	if a.lookup(top).kind == kindAbsent && !a.expected[top] {
		return nil
	}
	if v := a.verdict(name); v.err != "" {
		return v
	}
	return nil
}

func readLimited(t *source.Tree, p string) ([]byte, error) {
	f, err := t.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() < maxSourceSize {
		size = int(st.Size()) + 1
	}
	b := bytes.NewBuffer(make([]byte, 0, size))
	_, err = b.ReadFrom(io.LimitReader(f, maxSourceSize))
	return b.Bytes(), err
}

func finish(mods map[string]*snapshot.Module) []snapshot.Module {
	out := make([]snapshot.Module, 0, len(mods))
	for _, m := range mods {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b snapshot.Module) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// registersSubmodule reports whether a package's __init__.py puts full into
// sys.modules itself, as Debian 13's collections does for collections.abc
// (_sys.modules['collections.abc'] = _collections_abc) with no abc.py on
// disk: the submodule exists once the package is imported.
func registersSubmodule(t *source.Tree, initPy, full string) bool {
	f, err := t.Open(initPy)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return false
	}
	text := string(b)
	for _, q := range []string{"'", `"`} {
		if strings.Contains(text, "modules["+q+full+q+"]") {
			return true
		}
	}
	return false
}
