package runtimes

import (
	"context"
	_ "embed"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/version"
)

// KindPerl is Perl's runtime kind (snapshot.Runtime.Kind).
const KindPerl = "perl"

//go:embed probes/perl.pl
var perlProbe string

// PerlConfig is what a Perl's Config.pm (and Config_heavy.pl) say about the
// build: its version and the library directories of its @INC.
type PerlConfig struct {
	Version string
	// Dirs are archlib, privlib, the vendor and site directories, in
	// @INC's order of precedence among them.
	Dirs []string
}

var perlConfigKey = regexp.MustCompile(`(?m)^\s*(version|archlibexp|privlibexp|sitearchexp|sitelibexp|vendorarchexp|vendorlibexp)\s*(?:=>\s*|=)'([^']*)'`)

// ParsePerlConfig reads Config.pm's and Config_heavy.pl's key => 'value'
// lines (Config_heavy.pl writes key='value'). ErrNoVersion when neither
// states a version.
func ParsePerlConfig(data ...[]byte) (PerlConfig, error) {
	vals := map[string]string{}
	for _, d := range data {
		for _, m := range perlConfigKey.FindAllSubmatch(d, -1) {
			if _, ok := vals[string(m[1])]; !ok {
				vals[string(m[1])] = string(m[2])
			}
		}
	}
	c := PerlConfig{Version: vals["version"]}
	if !plausibleVersion(c.Version) {
		return c, fmt.Errorf("perl: %w in Config.pm", ErrNoVersion)
	}
	for _, k := range []string{"sitearchexp", "sitelibexp", "vendorarchexp", "vendorlibexp", "archlibexp", "privlibexp"} {
		if v := vals[k]; strings.HasPrefix(v, "/") {
			c.Dirs = append(c.Dirs, v)
		}
	}
	return c, nil
}

// perlConfigPatterns find a Perl's Config.pm under its prefix: Debian's
// perl-base (which /usr/bin/perl loads first), then archlib layouts of
// Debian, of a source build and of perlbrew/plenv.
var perlConfigPatterns = []string{
	"lib/*/perl-base/Config.pm",
	"lib/*/perl/5.*/Config.pm",
	"lib/perl5/5.*/*/Config.pm",
	"lib/perl5/*/Config.pm",
	"lib/5.*/*/Config.pm",
	"lib64/perl5/Config.pm",
}

func perlConfigFile(t *source.Tree, prefix string) string {
	for _, p := range perlConfigPatterns {
		m, _ := t.Glob(path.Join(prefix, p))
		for _, f := range m {
			if !strings.Contains(f, "cross-config") {
				return f
			}
		}
	}
	return ""
}

// readPerlConfig reads the Config of the Perl at prefix; the directory
// Config.pm lies in is on its @INC too (Debian's perl-base).
func readPerlConfig(t *source.Tree, prefix string) (PerlConfig, error) {
	file := perlConfigFile(t, prefix)
	if file == "" {
		return PerlConfig{}, fmt.Errorf("no Config.pm under %s/lib", prefix)
	}
	pm, err := readFile(t, file)
	if err != nil {
		return PerlConfig{}, err
	}
	heavy, _ := readFile(t, path.Join(path.Dir(file), "Config_heavy.pl"))
	c, err := ParsePerlConfig(pm, heavy)
	if err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	c.Dirs = append(c.Dirs, path.Dir(file))
	return c, nil
}

// readPerl confirms a Perl: bin/perl and a Config.pm stating its version.
func readPerl(t *source.Tree, prefix string) ([]snapshot.Runtime, string) {
	exe := path.Join(prefix, "bin", "perl")
	if !isExecutable(t, exe) {
		return nil, ""
	}
	c, err := readPerlConfig(t, prefix)
	if err != nil {
		return nil, "" // a perl without its library is not an installation to check
	}
	return []snapshot.Runtime{{Kind: KindPerl, Version: c.Version, Path: prefix, Executable: exe}}, ""
}

// distributionPerl is a Perl of the OS in /usr: Debian splits its core
// modules over perl-base, perl-modules-X.Y and libperlX.Y, so a module it
// did not install is the package manager's choice, not a broken build.
func distributionPerl(r *snapshot.Runtime) bool { return r.Path == "/usr" }

// perlModuleFile is Foo::Bar's file under an @INC directory: Foo/Bar.pm.
func perlModuleFile(name string) string { return strings.ReplaceAll(name, "::", "/") + ".pm" }

// perlXSFile is the loadable object DynaLoader looks for:
// auto/Foo/Bar/Bar.so.
func perlXSFile(name string) string {
	p := strings.ReplaceAll(name, "::", "/")
	return path.Join("auto", p, path.Base(p)+".so")
}

// checkPerl gives a Perl its parts: the core modules of its version
// (generated from Module::CoreList and a real build by
// scripts/gen-runtime-lists), each a .pm on its @INC, and those with an XS
// part a loadable object whose libraries resolve inside the image; with
// execution each require'd in the Perl itself.
func checkPerl(ctx context.Context, t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, opts Options) (map[string]*snapshot.Module, []string) {
	c, err := readPerlConfig(t, r.Path)
	if err != nil {
		return nil, []string{fmt.Sprintf("perl at %s: %v; core modules not checked", r.Path, err)}
	}
	series := version.MajorMinor(r.Version)
	lines, known := ExpectedParts("perl", series)
	if !known {
		return nil, []string{fmt.Sprintf("perl at %s: no core module list for Perl %s (scripts/gen-runtime-lists); core modules not checked", r.Path, series)}
	}
	find := func(rel string) string {
		for _, d := range c.Dirs {
			if p := path.Join(d, rel); fileExists(t, p) {
				return p
			}
		}
		return ""
	}
	mods := map[string]*snapshot.Module{}
	var parts []string
	for _, line := range lines {
		name, flag, _ := strings.Cut(line, " ")
		xs := flag == "xs"
		pm := find(perlModuleFile(name))
		if pm == "" {
			if distributionPerl(r) {
				continue
			}
			mods[name] = &snapshot.Module{Name: name, Kind: snapshot.ModulePure, Status: snapshot.StatusMissing,
				Error: fmt.Sprintf("Can't locate %s in @INC", perlModuleFile(name))}
			continue
		}
		m := &snapshot.Module{Name: name, Kind: snapshot.ModulePure, Status: snapshot.StatusOK}
		mods[name] = m
		parts = append(parts, "module:"+name)
		if !xs {
			continue
		}
		m.Kind = snapshot.ModuleExtension
		so := find(perlXSFile(name))
		if so == "" {
			// DynaLoader's words when the .pm is there and its
			// object is not.
			m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("Can't locate loadable object for module %s in @INC", name)
		} else if miss := missingLibraries(t, res, so); len(miss) > 0 {
			m.Status, m.Error, m.MissingLibraries = snapshot.StatusBroken, fmt.Sprintf("Can't load '%s' for module %s: %s", so, name, ldso.NotFoundError(miss[0])), miss
		}
	}
	if t.Runner == nil || r.Executable == "" || len(parts) == 0 {
		return mods, nil
	}
	var warnings []string
	out, w := runPartsSweep(ctx, t.Runner, sweepSpec{
		what:    fmt.Sprintf("perl at %s", r.Path),
		parts:   parts,
		timeout: opts.PartTimeout,
		command: func(parts []string) sandbox.Command {
			args := append([]string{"-e", perlProbe, strconv.FormatInt(opts.PartTimeout.Milliseconds(), 10)}, parts...)
			return sandbox.Command{Path: r.Executable, Args: args,
				Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C", "PERL5LIB=", "PERL5OPT="}}
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
		if m.Status == snapshot.StatusOK {
			m.Status = res.Status
		}
		m.Error = res.Err // Perl's words over the files'
	}
	return mods, warnings
}

func fileExists(t *source.Tree, p string) bool {
	fi, err := stat(t, p)
	return err == nil && fi.Mode().IsRegular()
}
