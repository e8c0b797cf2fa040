package runtimes

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/version"
)

//go:embed probes/ruby.rb
var rubyProbe string

// rubyArchDir finds the directory of a Ruby's extension libraries: the one
// its rbconfig.rb lies in (ruby-build: lib/ruby/3.1.0/x86_64-linux;
// Debian: lib/x86_64-linux-gnu/ruby/3.1.0).
func rubyArchDir(t *source.Tree, prefix string) string {
	host, err := t.HostPath(prefix)
	if err != nil {
		return ""
	}
	for _, pattern := range []string{"lib/ruby/*/*/rbconfig.rb", "lib/*/ruby/*/rbconfig.rb"} {
		m, _ := filepath.Glob(filepath.Join(host, pattern))
		for _, f := range m {
			rel, err := filepath.Rel(host, filepath.Dir(f))
			if err == nil {
				return path.Join(prefix, filepath.ToSlash(rel))
			}
		}
	}
	return ""
}

// checkRuby gives a Ruby its parts: the extension libraries of its X.Y
// (generated lists; the archdir's own .so files with execution), each a
// shared object whose libraries resolve inside the image, and with
// execution each require'd.
func checkRuby(ctx context.Context, t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, opts Options) (map[string]*snapshot.Module, []string) {
	var warnings []string
	mods := map[string]*snapshot.Module{}
	arch := rubyArchDir(t, r.Path)
	if arch == "" {
		return nil, []string{fmt.Sprintf("ruby at %s: no rbconfig.rb under lib; extensions not checked", r.Path)}
	}
	xy := version.MajorMinor(r.Version)
	want, known := ExpectedParts("ruby", xy)
	if !known {
		warnings = append(warnings, fmt.Sprintf("ruby at %s: no extension list for Ruby %s (scripts/gen-runtime-lists); only the extensions it ships are checked", r.Path, xy))
		want = listRubyExtensions(t, arch)
	}
	for _, name := range want {
		m := &snapshot.Module{Name: name, Kind: snapshot.ModuleExtension, Status: snapshot.StatusOK}
		so := path.Join(arch, name+".so")
		if _, err := stat(t, so); err != nil {
			// Ruby's own words for a feature it cannot find.
			m.Status, m.Error = snapshot.StatusMissing, "cannot load such file -- "+name
		} else if miss := missingLibraries(t, res, so, path.Join(r.Path, "lib")); len(miss) > 0 {
			m.Status, m.Error, m.MissingLibraries = snapshot.StatusBroken, ldso.NotFoundError(miss[0])+" - "+so, miss
		}
		mods[name] = m
	}
	if t.Runner == nil || r.Executable == "" {
		return mods, warnings
	}
	var parts []string
	for _, name := range sortedKeys(mods) {
		parts = append(parts, "module:"+name)
	}
	out, w := runPartsSweep(ctx, t.Runner, sweepSpec{
		what:    fmt.Sprintf("ruby at %s", r.Path),
		parts:   parts,
		timeout: opts.PartTimeout,
		command: func(parts []string) sandbox.Command {
			args := append([]string{"--disable-gems", "-rrbconfig", "-e", rubyProbe, strconv.FormatInt(opts.PartTimeout.Milliseconds(), 10)}, parts...)
			return sandbox.Command{Path: r.Executable, Args: args,
				Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "RUBYOPT=", "RUBYLIB="}}
		},
	})
	if w != "" {
		warnings = append(warnings, w)
	}
	for part, res := range out.results {
		m := mods[strings.TrimPrefix(part, "module:")]
		if m == nil || res.Status == snapshot.StatusOK {
			continue
		}
		switch m.Status {
		case snapshot.StatusMissing, snapshot.StatusBroken:
			m.Error = res.Err // the interpreter's words over the files'
		default:
			m.Status, m.Error = res.Status, res.Err
		}
	}
	return mods, warnings
}

// listRubyExtensions is what an archdir ships, encodings left out (Ruby
// loads those on demand, by name, hundreds of them).
func listRubyExtensions(t *source.Tree, arch string) []string {
	host, err := t.HostPath(arch)
	if err != nil {
		return nil
	}
	var out []string
	_ = filepath.WalkDir(host, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(host, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (rel == "enc" || strings.Count(rel, "/") > 3) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(rel, ".so") {
			out = append(out, strings.TrimSuffix(rel, ".so"))
		}
		return nil
	})
	return out
}
