package ospkg

import (
	"path"
	"strings"
)

// Owners tells which OS package ships which path. Paths are absolute
// paths inside the image, as the package database lists them. The zero
// value and a nil *Owners are empty. An Owners is not modified after
// Packages returns it, so it is safe for concurrent Lookups.
type Owners struct {
	byPath map[string]string
}

// usrMerged are the top-level directories that usr-merged systems
// (Debian 12, Fedora, Ubuntu 20.04 on) keep under /usr with a link at "/".
var usrMerged = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// Lookup returns the package that ships the in-image path, trying the
// usr-merged alias (/bin/x <-> /usr/bin/x, /lib <-> /usr/lib, /sbin,
// /lib64...) because Debian 12's database lists /bin/bash while the file
// is reached as /usr/bin/bash. It does not follow symbolic links: resolve
// the path inside the image first (source.Tree.Resolve) to find the
// owner of what a link points to. When several packages list a path (as
// they all list shared directories) the alphabetically first one is
// returned, so the answer does not depend on reading order.
func (o *Owners) Lookup(p string) (pkg string, ok bool) {
	if o == nil || len(o.byPath) == 0 || p == "" {
		return "", false
	}
	p = path.Clean("/" + p)
	if pkg, ok := o.byPath[p]; ok {
		return pkg, true
	}
	if alias, ok := usrMergeAlias(p); ok {
		pkg, ok := o.byPath[alias]
		return pkg, ok
	}
	return "", false
}

// Len is the number of paths with an owner.
func (o *Owners) Len() int {
	if o == nil {
		return 0
	}
	return len(o.byPath)
}

func usrMergeAlias(p string) (string, bool) {
	rest, underUsr := strings.CutPrefix(p, "/usr")
	if !underUsr || rest == "" || rest[0] != '/' {
		rest, underUsr = p, false
	}
	top := rest[1:]
	if i := strings.IndexByte(top, '/'); i >= 0 {
		top = top[:i]
	}
	for _, d := range usrMerged {
		if top == d {
			if underUsr {
				return rest, true
			}
			return "/usr" + p, true
		}
	}
	return "", false
}

func (o *Owners) add(p, pkg string) {
	if o.byPath == nil {
		o.byPath = make(map[string]string, 1<<16)
	}
	if old, ok := o.byPath[p]; ok && old <= pkg {
		return
	}
	o.byPath[p] = pkg
}

// addLines records pkg as an owner of every path in text, one absolute
// path a line, as dpkg's info/*.list files hold them. Lines keep pointing
// into text, which is read once per file, so the index costs one map
// entry per path and no string per path.
func (o *Owners) addLines(pkg, text string) {
	for len(text) > 0 {
		var line string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, ""
		}
		line = strings.TrimSuffix(line, "\r")
		if line == "" || line == "/." || line[0] != '/' {
			continue
		}
		if needsClean(line) {
			line = path.Clean(line)
		}
		o.add(line, pkg)
	}
}

// needsClean is a quick test that spares path.Clean, a quarter of the
// time of indexing a Debian system, for the paths dpkg already lists in
// clean form.
func needsClean(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/.") || len(p) > 1 && p[len(p)-1] == '/'
}

// addMD5Sums records pkg as the owner of each file in an md5sums file:
// "<digest>  <path relative to />" a line, as distroless status.d holds.
func (o *Owners) addMD5Sums(pkg string, data []byte) {
	for _, line := range strings.Split(string(data), "\n") {
		_, p, ok := strings.Cut(strings.TrimSuffix(line, "\r"), "  ")
		if !ok || p == "" {
			continue
		}
		o.add(path.Clean("/"+p), pkg)
	}
}
