package python

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/imagegate/imagegate/internal/source"
)

var (
	pyVersionDefine = regexp.MustCompile(`(?m)^#define\s+PY_VERSION\s+"([0-9][^"]*)"`)
	fullVersion     = regexp.MustCompile(`^([0-9]+\.[0-9]+)\.[0-9]+([abc]|rc)?[0-9]*\+?$`)
)

// staticVersion finds the full X.Y.Z without running anything, from the
// most to the least reliable source: the installed patchlevel.h (every
// source build, and distributions with the -dev package); for /usr, the
// OS package database's version of the interpreter package (Debian's
// python3.11 without headers); a path element that is the version itself
// (tool caches, pyenv); and finally X.Y alone.
func staticVersion(t *source.Tree, in *install) string {
	if incs, err := t.HostPath(path.Join(in.prefix, "include")); err == nil {
		matches, _ := filepath.Glob(filepath.Join(incs, "python"+in.xy+"*", "patchlevel.h"))
		for _, m := range matches {
			if b, err := readLimited(m); err == nil {
				if v := pyVersionDefine.FindSubmatch(b); v != nil && strings.HasPrefix(string(v[1]), in.xy+".") {
					return string(v[1])
				}
			}
		}
	}
	if in.prefix == "/usr" {
		if v := dpkgVersion(t, "python"+in.xy+"-minimal", "libpython"+in.xy+"-minimal", "python"+in.xy); v != "" {
			return v
		}
		if v := apkVersion(t, "python"+in.xy[:1], in.xy); v != "" {
			return v
		}
	}
	for _, el := range strings.Split(in.prefix, "/") {
		if m := fullVersion.FindStringSubmatch(el); m != nil && m[1] == in.xy {
			return el
		}
	}
	return in.xy
}

// upstream strips a distribution version to the upstream one:
// "1:3.11.2-6+deb12u6" → "3.11.2".
func upstream(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	v, _, _ = strings.Cut(v, "-")
	v, _, _ = strings.Cut(v, "~")
	v, _, _ = strings.Cut(v, "+")
	return v
}

// dpkgVersion returns the upstream version of the first of pkgs that the
// dpkg database lists as installed.
func dpkgVersion(t *source.Tree, pkgs ...string) string {
	want := map[string]int{}
	for i, n := range pkgs {
		want[n] = i + 1
	}
	found := make([]string, len(pkgs)+1)
	var pkg, version string
	installed := false
	end := func() {
		if i := want[pkg]; i > 0 && installed && version != "" {
			found[i] = upstream(version)
		}
		pkg, version, installed = "", "", false
	}
	eachLine(t, "/var/lib/dpkg/status", func(line string) bool {
		switch {
		case line == "":
			end()
		case strings.HasPrefix(line, "Package: "):
			pkg = strings.TrimSpace(line[len("Package: "):])
		case strings.HasPrefix(line, "Version: "):
			version = strings.TrimSpace(line[len("Version: "):])
		case strings.HasPrefix(line, "Status: "):
			installed = strings.HasSuffix(strings.TrimSpace(line), " installed")
		}
		return true
	})
	end()
	for _, v := range found[1:] {
		if v != "" {
			return v
		}
	}
	return ""
}

// apkVersion returns the upstream version of Alpine's package pkg when it
// is for Python xy.
func apkVersion(t *source.Tree, pkg, xy string) string {
	cur, found := "", ""
	eachLine(t, "/lib/apk/db/installed", func(line string) bool {
		switch {
		case strings.HasPrefix(line, "P:"):
			cur = line[2:]
		case strings.HasPrefix(line, "V:") && cur == pkg:
			if v := upstream(line[2:]); strings.HasPrefix(v, xy+".") {
				found = v
				return false
			}
		}
		return true
	})
	return found
}

// eachLine calls fn with each line of the image's file p until fn returns
// false. A file that is absent or unreadable has no lines: the version is
// then looked for elsewhere.
func eachLine(t *source.Tree, p string, fn func(line string) bool) {
	host, err := t.HostPath(p)
	if err != nil {
		return
	}
	f, err := os.Open(host)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !fn(sc.Text()) {
			return
		}
	}
}

var sysconfigPrefix = regexp.MustCompile(`(?m)^\s*'prefix':\s*'([^'\n]+)'`)

// builtPrefix is the prefix the installation was configured for, from its
// _sysconfigdata (the build's `./configure --prefix`): it travels with
// every copy of the tree, so a pyenv build copied elsewhere still says it
// was made by pyenv. "" when the file is absent or says nothing.
func builtPrefix(t *source.Tree, in *install) string {
	lib, err := t.HostPath(path.Join(in.prefix, in.libRel))
	if err != nil {
		return ""
	}
	matches, _ := filepath.Glob(filepath.Join(lib, "_sysconfigdata*.py"))
	for _, m := range matches {
		if b, err := readLimited(m); err == nil {
			if v := sysconfigPrefix.FindSubmatch(b); v != nil {
				return string(v[1])
			}
		}
	}
	return ""
}

// cutFrom returns built when the in-image prefix is its tail, that is when
// the scanned tree was cut out of the place the installation was built for
// (dir:~/.pyenv/versions puts /root/.pyenv/versions/3.9.18 at /3.9.18, and
// dir:~/.pyenv/versions/3.9.18 at /); "" otherwise, for an installation
// that now lives elsewhere on purpose (a build copied to /usr/local).
func cutFrom(built, inImage string) string {
	if built == "" || !path.IsAbs(built) {
		return ""
	}
	built = path.Clean(built)
	// inImage starts with "/", so a suffix match ends at a path boundary.
	if inImage == "/" || strings.HasSuffix(built, path.Clean(inImage)) {
		return built
	}
	return ""
}
