// Package python finds every CPython installation in an image and reports
// its standard library module by module: what the installation ships (pure
// modules, packages, lib-dynload extensions, built-ins), what the version is
// expected to ship but does not, and whether each module would import.
//
// Without execution the verdict comes from the files: a module whose
// unconditional imports reach a standard-library C extension that is absent,
// or an extension whose shared libraries do not resolve inside the image, is
// broken, with the error text Python itself would give. With execution one
// interpreter process per installation imports every module and reports the
// real result (see sweep.py).
package python

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// Options tune Collect.
type Options struct {
	// ModuleTimeout limits one module's import with execution (default 10s).
	ModuleTimeout time.Duration
	// Concurrency is how many installations are probed at once (default
	// runtime.NumCPU()).
	Concurrency int
}

// Finder recognises CPython installations during the scan's walk and then
// collects them. Visit is called from one goroutine at a time (the
// scan.Finder contract); Collect must be called after the walk.
type Finder struct {
	opts     Options
	installs map[string]*install // by in-image prefix + version
	// siteDirs are dist-packages directories outside any installation's
	// own lib dir, by the "X" or "X.Y" they serve: Debian's
	// /usr/lib/python3/dist-packages and /usr/local/lib/python3.11/dist-packages.
	siteDirs map[string][]string
}

// install is one CPython installation found by the walk.
type install struct {
	prefix string // in-image
	xy     string // "3.7"
	libRel string // "lib/python3.7"
	// extraSite are in-image dist-packages directories outside the
	// installation that it reads (Debian's /usr/lib/python3/dist-packages).
	extraSite []string
}

// NewFinder returns a Finder with opts' zero values replaced by defaults.
func NewFinder(opts Options) *Finder {
	if opts.ModuleTimeout <= 0 {
		opts.ModuleTimeout = 10 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.NumCPU()
	}
	return &Finder{opts: opts, installs: map[string]*install{}, siteDirs: map[string][]string{}}
}

var libDirName = regexp.MustCompile(`^python([23])\.([0-9]{1,2})$`)

// Visit recognises an installation by its standard library: a directory
// …/lib/pythonX.Y (or lib64) that holds os.py marks the prefix "…". That
// directory is pruned, since Collect reads it. It also remembers
// dist-packages directories that belong to the system Python without
// living in its lib dir (Debian's /usr/lib/python3/dist-packages).
func (f *Finder) Visit(dir string, entries []fs.DirEntry) bool {
	base := path.Base(dir)
	parent := path.Dir(dir)
	if pb := path.Base(parent); pb != "lib" && pb != "lib64" {
		return false
	}
	if m := libDirName.FindStringSubmatch(base); m != nil {
		xy := m[1] + "." + m[2]
		if hasEntry(entries, "os.py", false) || hasEntry(entries, "os.pyc", false) {
			prefix := path.Dir(parent)
			key := prefix + "\x00" + xy
			if _, ok := f.installs[key]; !ok {
				f.installs[key] = &install{prefix: prefix, xy: xy, libRel: path.Base(parent) + "/" + base}
			}
			return true
		}
		// /usr/local/lib/python3.11/dist-packages serves Debian's /usr python3.11.
		if hasEntry(entries, "dist-packages", true) {
			f.siteDirs[xy] = append(f.siteDirs[xy], path.Join(dir, "dist-packages"))
		}
		return false
	}
	if (base == "python3" || base == "python2") && hasEntry(entries, "dist-packages", true) {
		f.siteDirs[base[len("python"):]] = append(f.siteDirs[base[len("python"):]], path.Join(dir, "dist-packages"))
	}
	return false
}

func hasEntry(entries []fs.DirEntry, name string, dir bool) bool {
	for _, e := range entries {
		if e.Name() == name {
			return e.IsDir() == dir
		}
	}
	return false
}

// Collect analyses every installation the walk found, concurrently, and
// returns one runtime per installation sorted by path. Problems with one
// installation become warnings; the error is non-nil only when the context
// ends.
func (f *Finder) Collect(ctx context.Context, t *source.Tree) ([]snapshot.Runtime, []string, error) {
	res, err := ldso.NewTreeResolver(ctx, t.Libraries())
	if err != nil {
		return nil, nil, fmt.Errorf("read shared-library configuration: %w", err)
	}
	keys := make([]string, 0, len(f.installs))
	for k := range f.installs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	systemPy3 := f.systemPython3(t)

	var (
		mu       sync.Mutex
		runtimes []snapshot.Runtime
		warnings []string
		wg       sync.WaitGroup
		sem      = make(chan struct{}, f.opts.Concurrency)
	)
	for _, k := range keys {
		in := *f.installs[k]
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if in.prefix == "/usr" {
				in.extraSite = append(in.extraSite, f.siteDirs[in.xy]...)
				if in.xy == systemPy3 || strings.HasPrefix(in.xy, "2.") {
					in.extraSite = append(in.extraSite, f.siteDirs[in.xy[:1]]...)
				}
			}
			rt, ws, ok := f.collectOne(ctx, t, res, &in)
			mu.Lock()
			defer mu.Unlock()
			warnings = append(warnings, ws...)
			if ok {
				runtimes = append(runtimes, rt)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(runtimes, func(a, b snapshot.Runtime) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Version, b.Version))
	})
	slices.Sort(warnings)
	return runtimes, warnings, nil
}

// systemPython3 returns the X.Y that /usr/bin/python3 runs, so that
// /usr/lib/python3/dist-packages is attached to that one interpreter when
// several python3.Y live in /usr; the highest X.Y when the link says nothing.
func (f *Finder) systemPython3(t *source.Tree) string {
	if p, err := t.Resolve("/usr/bin/python3"); err == nil {
		if m := regexp.MustCompile(`python(3\.[0-9]+)$`).FindStringSubmatch(p); m != nil {
			return m[1]
		}
	}
	best := ""
	for _, in := range f.installs {
		if in.prefix == "/usr" && strings.HasPrefix(in.xy, "3.") && (best == "" || versionLess(best, in.xy)) {
			best = in.xy
		}
	}
	return best
}

func versionLess(a, b string) bool {
	var a1, a2, b1, b2 int
	fmt.Sscanf(a, "%d.%d", &a1, &a2)
	fmt.Sscanf(b, "%d.%d", &b1, &b2)
	return a1 < b1 || (a1 == b1 && a2 < b2)
}

// collectOne analyses one installation; ok is false when it turned out not
// to be one (a conda package cache entry).
func (f *Finder) collectOne(ctx context.Context, t *source.Tree, res *ldso.Resolver, in *install) (snapshot.Runtime, []string, bool) {
	if exists(t, path.Join(in.prefix, "info", "index.json")) {
		return snapshot.Runtime{}, nil, false // conda's package cache, not an environment
	}
	rt := snapshot.Runtime{
		Kind:   snapshot.RuntimePython,
		Path:   in.prefix,
		Origin: t.Origin(in.prefix),
	}
	if rt.Origin == snapshot.OriginSource {
		rt.Origin = source.OriginOfPath(cutFrom(builtPrefix(t, in), in.prefix))
	}
	exe := findExecutable(t, in)
	rt.Executable = exe
	rt.Version = staticVersion(t, in)

	a := newAnalysis(t, res, in, exe)
	mods, warnings := a.run()
	// A runner that will start the interpreter tells the truth about it
	// (the sweep warns when it cannot); the static guess is for --exec none.
	if exe != "" && t.Runner == nil {
		missing, err := res.MissingIn(t, exe, a.libCoord(path.Dir(exe)), a.libCoord(path.Join(in.prefix, "lib")))
		if err == nil && len(missing) > 0 {
			warnings = append(warnings, fmt.Sprintf("python %s: the interpreter %s cannot start: %s", in.prefix, exe, ldso.NotFoundError(missing[0])))
		}
	}
	if t.Runner != nil && exe != "" {
		version, ws := f.sweep(ctx, t, in, exe, mods, a)
		warnings = append(warnings, ws...)
		if version != "" {
			rt.Version = version
		}
	}
	rt.Modules = finish(mods)
	rt.Packages = sitePackages(t, in)
	return rt, warnings, true
}

// exists reports whether an in-image path exists, links followed inside
// the image.
func exists(t *source.Tree, inImage string) bool {
	_, err := t.Stat(inImage)
	return err == nil
}

// findExecutable returns the in-image interpreter: prefix/bin/pythonX.Y,
// else pythonX, else python; "" when there is none.
func findExecutable(t *source.Tree, in *install) string {
	for _, name := range []string{"python" + in.xy, "python" + in.xy[:1], "python"} {
		p := path.Join(in.prefix, "bin", name)
		if isFile(t, p) {
			return p
		}
	}
	return ""
}
