// Package runtimes finds the Node.js, Go, Java, Ruby, PHP, Perl and .NET installations
// of an image while the scan walks it, reads each one's version from its own
// files, and confirms it by running the runtime when the scan may execute.
package runtimes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// Runtime kinds, as snapshot.Runtime.Kind.
const (
	KindNode          = snapshot.RuntimeNode
	KindGo            = snapshot.RuntimeGo
	KindJava          = snapshot.RuntimeJava
	KindRuby          = snapshot.RuntimeRuby
	KindDotnetSDK     = snapshot.RuntimeDotnetSDK
	KindDotnetRuntime = snapshot.RuntimeDotnetRuntime
)

// candidate is a directory that looked like an installation during the walk;
// Collect confirms it from its files.
type candidate struct {
	kind string // KindNode, KindGo, KindJava, KindRuby, or "dotnet"
	dir  string // in-image: the prefix (node: its bin dir's parent; ruby: rbconfig.rb's dir)
}

// Finder recognises installations while the scan walks the image. Visit must
// be called from one goroutine at a time (scan.Finder's contract); Collect
// after the walk.
type Finder struct {
	opts  Options
	found map[candidate]bool
}

// NewFinder returns a Finder that has seen nothing yet, with opts' zero
// values replaced by defaults.
func NewFinder(opts Options) *Finder {
	return &Finder{opts: opts.withDefaults(), found: map[candidate]bool{}}
}

// Visit notes the installations dir is, or holds, from its entries alone. It
// prunes the trees it reads itself in Collect (a GOROOT, a JDK, a .NET root),
// which are large and hold no other runtime.
func (f *Finder) Visit(dir string, entries []fs.DirEntry) (prune bool) {
	var versionFile, bin, src, lib, release, dotnet, sdk, shared, node, rbconfig, php, perl bool
	for _, e := range entries {
		if phpBinaryName.MatchString(e.Name()) && !e.IsDir() {
			php = true
		}
		// A link to a directory counts as one: Debian's GOROOT links
		// src to /usr/share/go-1.xx/src.
		dirLike := e.IsDir() || e.Type()&fs.ModeSymlink != 0
		fileLike := !e.IsDir()
		switch e.Name() {
		case "VERSION":
			versionFile = fileLike
		case "bin":
			bin = dirLike
		case "src":
			src = dirLike
		case "lib":
			lib = dirLike
		case "release":
			release = fileLike
		case "dotnet":
			dotnet = fileLike
		case "sdk":
			sdk = dirLike
		case "shared":
			shared = dirLike
		case "node":
			node = fileLike
		case "rbconfig.rb":
			rbconfig = fileLike
		case "perl":
			perl = fileLike
		}
	}
	switch {
	case versionFile && bin && src:
		f.found[candidate{KindGo, dir}] = true
		prune = true
	case release && bin && lib:
		f.found[candidate{KindJava, dir}] = true
		prune = true
	case dotnet && (sdk || shared):
		f.found[candidate{"dotnet", dir}] = true
		prune = true
	}
	if node && path.Base(dir) == "bin" {
		f.found[candidate{KindNode, path.Dir(dir)}] = true
	}
	if rbconfig {
		f.found[candidate{KindRuby, dir}] = true
	}
	if path.Base(dir) == "bin" && php {
		f.found[candidate{KindPHP, path.Dir(dir)}] = true
	}
	if path.Base(dir) == "bin" && perl {
		f.found[candidate{KindPerl, path.Dir(dir)}] = true
	}
	// Global packages are read from package.json files in Collect; the
	// tree below (often 100k files) holds no runtime.
	if path.Base(dir) == "node_modules" {
		prune = true
	}
	return prune
}

// Collect confirms each installation Visit noted, from its files: its
// version, prefix, executable and (Node, Ruby) global packages; then it
// checks each one's standard parts (modules, trust store, tools), from the
// files and, when t.Runner is not nil, in one process of the runtime itself
// (see parts.go). When
// t.Runner is not nil, Node, Go, Java and Ruby are also asked for their
// version, and their answer wins; a runtime that does not answer keeps the
// version its files state, with a warning. A directory that only looked like
// an installation is dropped silently; one whose version cannot be told
// gives a warning. The result is sorted by kind, version and path.
func (f *Finder) Collect(ctx context.Context, t *source.Tree) ([]snapshot.Runtime, []string, error) {
	cands := make([]candidate, 0, len(f.found))
	for c := range f.found {
		cands = append(cands, c)
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.dir, b.dir))
	})
	var (
		out      []snapshot.Runtime
		warnings []string
		seen     = map[string]bool{}
	)
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("read runtimes: %w", err)
		}
		if !f.opts.wants(c.kind) {
			continue
		}
		var (
			rs []snapshot.Runtime
			w  string
		)
		switch c.kind {
		case KindGo:
			rs, w = readGo(t, c.dir)
		case KindJava:
			rs, w = readJava(t, c.dir)
		case KindNode:
			rs, w = readNode(t, c.dir)
		case KindRuby:
			rs, w = readRuby(t, c.dir)
		case "dotnet":
			rs, w = readDotnet(t, c.dir)
		case KindPHP:
			rs, w = readPHP(t, c.dir)
		case KindPerl:
			rs, w = readPerl(t, c.dir)
		}
		if w != "" {
			warnings = append(warnings, w)
		}
		for _, r := range rs {
			// The same installation reached twice (/usr/local/bin/node
			// linking into a prefix the walk also found) counts once.
			key := r.Kind + "\x00" + r.Path + "\x00" + r.Version
			if seen[key] {
				continue
			}
			seen[key] = true
			r.Origin = t.Origin(r.Path)
			out = append(out, r)
		}
	}
	if t.RootFS && f.opts.wants(KindSystem) {
		out = append(out, newSystemRuntime())
	}
	if t.Runner != nil {
		warnings = append(warnings, confirm(ctx, t.Runner, out)...)
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("run runtimes: %w", err)
		}
	}
	// Without a version a runtime cannot be compared or gated; say so
	// instead of reporting it half.
	out = slices.DeleteFunc(out, func(r snapshot.Runtime) bool {
		if r.Version != "" {
			return false
		}
		warnings = append(warnings, fmt.Sprintf("%s at %s: version unknown (its files do not state it and it was not run); not reported", r.Kind, r.Path))
		return true
	})
	slices.SortFunc(out, func(a, b snapshot.Runtime) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Path, b.Path))
	})
	warnings = append(warnings, checkParts(ctx, t, out, f.opts)...)
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("check runtime parts: %w", err)
	}
	// An image that shows none of the essentials (a bare tree with an
	// os-release) has no system entry rather than an empty one.
	out = slices.DeleteFunc(out, func(r snapshot.Runtime) bool { return r.Kind == KindSystem && len(r.Modules) == 0 })
	return out, warnings, nil
}

func readFile(t *source.Tree, p string) ([]byte, error) { return t.ReadFile(p) }

// stat follows links inside the image, never on the host.
func stat(t *source.Tree, p string) (fs.FileInfo, error) { return t.Stat(p) }

func isExecutable(t *source.Tree, p string) bool {
	fi, err := stat(t, p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func isDir(t *source.Tree, p string) bool {
	fi, err := stat(t, p)
	return err == nil && fi.IsDir()
}

// readGo confirms a GOROOT: VERSION, bin/go and src/runtime.
func readGo(t *source.Tree, dir string) ([]snapshot.Runtime, string) {
	exe := path.Join(dir, "bin", "go")
	if !isExecutable(t, exe) || !isDir(t, path.Join(dir, "src", "runtime")) {
		return nil, ""
	}
	data, err := readFile(t, path.Join(dir, "VERSION"))
	if err != nil {
		return nil, fmt.Sprintf("go at %s: %v", dir, err)
	}
	v, err := ParseGoVersionFile(data)
	if err != nil {
		// A development build has no release version; running it
		// may still tell.
		v = ""
	}
	return []snapshot.Runtime{{Kind: KindGo, Version: v, Path: dir, Executable: exe}}, ""
}

// readJava confirms a JDK or JRE: release with JAVA_VERSION, and bin/java.
func readJava(t *source.Tree, dir string) ([]snapshot.Runtime, string) {
	exe := path.Join(dir, "bin", "java")
	if !isExecutable(t, exe) {
		return nil, ""
	}
	data, err := readFile(t, path.Join(dir, "release"))
	if err != nil {
		return nil, fmt.Sprintf("java at %s: %v", dir, err)
	}
	v, err := ParseJavaRelease(data)
	if err != nil {
		return nil, fmt.Sprintf("java at %s: %v", dir, err)
	}
	return []snapshot.Runtime{{Kind: KindJava, Version: v, Path: dir, Executable: exe}}, ""
}

// readNode confirms a Node.js prefix: bin/node, with its version from the
// installed headers, or else from the prefix's name when npm is installed
// beside it (a tool cache or nvm folder named after the version).
func readNode(t *source.Tree, prefix string) ([]snapshot.Runtime, string) {
	exe := path.Join(prefix, "bin", "node")
	if !isExecutable(t, exe) {
		return nil, ""
	}
	// /usr/local/bin/node is often a link into the real prefix
	// (/usr/local/lib/nodejs/node-v20.1.0-linux-x64/bin/node); the real
	// one holds the headers and global packages.
	if real, err := t.Resolve(exe); err == nil && path.Base(real) == "node" && path.Base(path.Dir(real)) == "bin" {
		prefix, exe = path.Dir(path.Dir(real)), real
	}
	r := snapshot.Runtime{Kind: KindNode, Path: prefix, Executable: exe}
	if data, err := readFile(t, path.Join(prefix, "include", "node", "node_version.h")); err == nil {
		if v, err := ParseNodeHeader(data); err == nil {
			r.Version = v
		}
	}
	modules := path.Join(prefix, "lib", "node_modules")
	if r.Version == "" && isDir(t, path.Join(modules, "npm")) {
		r.Version = versionFromPath(prefix)
	}
	if r.Version == "" {
		// Debian's nodejs ships no headers (libnode-dev does) and no npm;
		// its changelog names the upstream version it packages.
		if data, err := readFile(t, path.Join(prefix, "share", "doc", "nodejs", "changelog.Debian.gz")); err == nil {
			if v, err := ParseDebianChangelog(data); err == nil {
				r.Version = v
			}
		}
	}
	r.Packages = readNodeModules(t, modules)
	return []snapshot.Runtime{r}, ""
}

// readNodeModules lists the global packages in a node_modules directory,
// scoped ones (@scope/name) included.
func readNodeModules(t *source.Tree, dir string) []snapshot.RuntimePackage {
	var pkgs []snapshot.RuntimePackage
	var read func(dir string, scoped bool)
	read = func(dir string, scoped bool) {
		entries, err := t.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			if !scoped && strings.HasPrefix(name, "@") {
				read(path.Join(dir, name), true)
				continue
			}
			data, err := readFile(t, path.Join(dir, name, "package.json"))
			if err != nil {
				continue
			}
			if p, err := ParsePackageJSON(data); err == nil {
				pkgs = append(pkgs, p)
			}
		}
	}
	read(dir, false)
	slices.SortFunc(pkgs, func(a, b snapshot.RuntimePackage) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return pkgs
}

// readRuby confirms a Ruby installation from its rbconfig.rb: a library
// without its interpreter (Debian's libruby for vim) is not a runtime.
func readRuby(t *source.Tree, dir string) ([]snapshot.Runtime, string) {
	file := path.Join(dir, "rbconfig.rb")
	data, err := readFile(t, file)
	if err != nil {
		return nil, fmt.Sprintf("ruby at %s: %v", dir, err)
	}
	c, err := ParseRbConfig(data, file)
	if err != nil || c.Executable == "" || c.Prefix == "" || !isExecutable(t, c.Executable) {
		return nil, ""
	}
	r := snapshot.Runtime{Kind: KindRuby, Version: c.Version, Path: c.Prefix, Executable: c.Executable}
	if c.RubyVersion != "" {
		specs := path.Join(c.Prefix, "lib", "ruby", "gems", c.RubyVersion, "specifications")
		r.Packages = append(readGemSpecs(t, specs), readGemSpecs(t, path.Join(specs, "default"))...)
		slices.SortFunc(r.Packages, func(a, b snapshot.RuntimePackage) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
		})
		r.Packages = slices.Compact(r.Packages)
	}
	return []snapshot.Runtime{r}, ""
}

// gemSpecName splits "net-http-0.3.0.gemspec" and
// "nokogiri-1.15.4-x86_64-linux.gemspec" into name and version.
var gemSpecName = regexp.MustCompile(`^(.+?)-(\d[0-9A-Za-z.]*)(?:-[^-]+(?:-[^-]+)*)?\.gemspec$`)

func readGemSpecs(t *source.Tree, dir string) []snapshot.RuntimePackage {
	entries, err := t.ReadDir(dir)
	if err != nil {
		return nil
	}
	var pkgs []snapshot.RuntimePackage
	for _, e := range entries {
		if m := gemSpecName.FindStringSubmatch(e.Name()); m != nil && !e.IsDir() {
			pkgs = append(pkgs, snapshot.RuntimePackage{Name: m[1], Version: m[2]})
		}
	}
	return pkgs
}

// readDotnet lists the SDKs (sdk/<version>) and runtimes
// (shared/Microsoft.NETCore.App/<version>) of a .NET root.
func readDotnet(t *source.Tree, dir string) ([]snapshot.Runtime, string) {
	exe := path.Join(dir, "dotnet")
	if !isExecutable(t, exe) {
		return nil, ""
	}
	var out []snapshot.Runtime
	for _, k := range []struct{ kind, sub string }{
		{KindDotnetSDK, "sdk"},
		{KindDotnetRuntime, "shared/Microsoft.NETCore.App"},
	} {
		entries, err := t.ReadDir(path.Join(dir, k.sub))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return out, fmt.Sprintf("dotnet at %s: %v", dir, err)
			}
			continue
		}
		for _, e := range entries {
			// sdk/ also holds NuGetFallbackFolder and similar.
			if e.IsDir() && plausibleVersion(e.Name()) {
				out = append(out, snapshot.Runtime{Kind: k.kind, Version: e.Name(), Path: dir, Executable: exe})
			}
		}
	}
	return out, ""
}

// execConcurrency bounds how many runtimes are asked for their version at
// once.
const execConcurrency = 4

// confirm asks each runtime for its version, replacing the one its files
// stated. It returns warnings for those that did not answer.
func confirm(ctx context.Context, r source.Runner, rs []snapshot.Runtime) []string {
	var (
		mu       sync.Mutex
		warnings []string
		wg       sync.WaitGroup
		sem      = make(chan struct{}, execConcurrency)
	)
	for i := range rs {
		if _, ok := versionCommands[rs[i].Kind]; !ok || rs[i].Executable == "" {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return warnings
		}
		wg.Go(func() {
			defer func() { <-sem }()
			v, err := runVersion(ctx, r, rs[i].Kind, rs[i].Executable)
			if err != nil {
				mu.Lock()
				warnings = append(warnings, fmt.Sprintf("%s at %s: %v", rs[i].Kind, rs[i].Path, err))
				mu.Unlock()
				return
			}
			rs[i].Version = v
		})
	}
	wg.Wait()
	// Runs finish in any order; the snapshot must not.
	slices.Sort(warnings)
	return warnings
}
