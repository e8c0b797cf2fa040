package ospkg

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

const (
	dpkgStatus   = "/var/lib/dpkg/status"
	dpkgStatusD  = "/var/lib/dpkg/status.d"
	dpkgUpdates  = "/var/lib/dpkg/updates"
	dpkgInfo     = "/var/lib/dpkg/info"
	debType      = snapshot.PackageDeb
	dpkgWantedOK = "ok"
)

// debRecord is one dpkg status paragraph before it is judged installed.
type debRecord struct {
	pkg snapshot.Package
	// status is the Status field; "" when the paragraph had none.
	status string
}

func (r debRecord) key() string { return r.pkg.Name + ":" + r.pkg.Arch }

// installed reports whether dpkg considers the package's files in place
// and configured. The want word (install, hold, deinstall, purge) is
// ignored: a held package is as installed as any other. Pending triggers
// do not make a package less installed. half-installed, unpacked,
// half-configured and config-files are excluded: their files are not (or
// not all) there, or the package is not configured.
func (r debRecord) installed() bool {
	f := strings.Fields(r.status)
	if len(f) != 3 || f[1] != dpkgWantedOK {
		return false
	}
	switch f[2] {
	case "installed", "triggers-pending", "triggers-awaited":
		return true
	}
	return false
}

func keepDebField(k string) bool {
	switch k {
	case "package", "status", "version", "architecture", "source":
		return true
	}
	return false
}

// parseDebRecords reads the paragraphs of a dpkg status file. Paragraphs
// without Package or Version cannot name a package; each is counted in
// the returned number of skipped paragraphs.
func parseDebRecords(data []byte) (recs []debRecord, skipped int) {
	deb822Paragraphs(data, keepDebField, func(p paragraph) {
		name, ver := p["package"], p["version"]
		if name == "" || ver == "" || strings.ContainsAny(name+ver, " \t\n") {
			skipped++
			return
		}
		src := p["source"]
		// "Source: openssl (3.0.11-1)" names a source whose version differs
		// from the binary's; the version is not part of the name.
		if i := strings.IndexByte(src, '('); i >= 0 {
			src = src[:i]
		}
		src = strings.TrimSpace(src)
		if src == name {
			src = ""
		}
		recs = append(recs, debRecord{
			pkg: snapshot.Package{
				Type:       debType,
				Name:       name,
				Version:    ver,
				Arch:       p["architecture"],
				SourceName: src,
			},
			status: p["status"],
		})
	})
	return recs, skipped
}

// ParseDpkgStatus parses dpkg's status file and returns the packages whose
// files are installed (see the package doc), sorted, and a warning for
// each paragraph it could not read.
func ParseDpkgStatus(data []byte) ([]snapshot.Package, []string) {
	recs, skipped := parseDebRecords(data)
	var pkgs []snapshot.Package
	for _, r := range recs {
		if r.installed() {
			pkgs = append(pkgs, r.pkg)
		}
	}
	sortPackages(pkgs)
	return pkgs, skippedWarning("dpkg status", skipped)
}

func skippedWarning(what string, n int) []string {
	if n == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s: %d entries without a package name or version skipped", what, n)}
}

// readDpkg reads the dpkg database of a root: the status file with any
// journal entries in updates/ that dpkg has not folded in yet, or, in
// distroless images, one file per package under status.d/.
func readDpkg(ctx context.Context, t *source.Tree, owners *Owners) (pkgs []snapshot.Package, warns []string, err error) {
	byKey := map[string]debRecord{}
	var order []string
	add := func(recs []debRecord) {
		for _, r := range recs {
			k := r.key()
			if _, seen := byKey[k]; !seen {
				order = append(order, k)
			}
			byKey[k] = r
		}
	}

	data, found, err := readImageFile(t, dpkgStatus)
	if err != nil {
		return nil, []string{err.Error()}, nil
	}
	if found {
		recs, skipped := parseDebRecords(data)
		warns = append(warns, skippedWarning(dpkgStatus, skipped)...)
		add(recs)
		// dpkg journals changes to updates/NNNN before rewriting status;
		// after an interrupted run they hold the newest state.
		ups, w := readDirFiles(t, dpkgUpdates, func(n string) bool { return isDigits(n) })
		warns = append(warns, w...)
		slices.SortFunc(ups, func(a, b dirFile) int { return cmp.Compare(atoi(a.name), atoi(b.name)) })
		for _, u := range ups {
			recs, skipped := parseDebRecords(u.data)
			warns = append(warns, skippedWarning(path.Join(dpkgUpdates, u.name), skipped)...)
			add(recs)
		}
	}

	// Distroless images have no status file but one control paragraph
	// per package, and the package's md5sums beside it.
	dl, w := readDirFiles(t, dpkgStatusD, func(string) bool { return true })
	warns = append(warns, w...)
	for _, f := range dl {
		if strings.HasSuffix(f.name, ".md5sums") {
			continue
		}
		recs, skipped := parseDebRecords(f.data)
		warns = append(warns, skippedWarning(path.Join(dpkgStatusD, f.name), skipped)...)
		for i := range recs {
			// These files exist only for installed packages, and most
			// carry no Status field at all.
			if recs[i].status == "" {
				recs[i].status = "install ok installed"
			}
		}
		add(recs)
		for _, r := range recs {
			if md, ok := findFile(dl, f.name+".md5sums"); ok {
				owners.addMD5Sums(r.pkg.Name, md)
			}
		}
	}
	installed := map[string]bool{}
	for _, k := range order {
		if r := byKey[k]; r.installed() {
			pkgs = append(pkgs, r.pkg)
			installed[r.pkg.Name] = true
		}
	}
	if found {
		w, err := readDpkgLists(ctx, t, installed, owners)
		if err != nil {
			return nil, nil, err
		}
		warns = append(warns, w...)
	}
	return pkgs, warns, nil
}

// listPackage names the package of an info/ file list: "bash.list" and
// "libc6:amd64.list" (multi-arch) belong to bash and libc6.
func listPackage(file string) (string, bool) {
	base, ok := strings.CutSuffix(file, ".list")
	pkg, _, _ := strings.Cut(base, ":")
	return pkg, ok
}

func findFile(fs []dirFile, name string) ([]byte, bool) {
	for _, f := range fs {
		if f.name == name {
			return f.data, true
		}
	}
	return nil, false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// readDpkgLists records the owner of every path in info/*.list. A Debian
// system has around a thousand of these files, so they are read by a few
// goroutines while one goroutine fills the index. Lists of packages that
// are not installed (left by an interrupted removal) are ignored.
func readDpkgLists(ctx context.Context, t *source.Tree, installed map[string]bool, owners *Owners) ([]string, error) {
	ents, err := t.ReadDir(dpkgInfo)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return []string{fmt.Sprintf("read dpkg file lists %s: %v", dpkgInfo, err)}, nil
	}
	var names []string
	for _, e := range ents {
		// Only regular files: a link in an image must never make the scan
		// read a file of this machine.
		pkg, isList := listPackage(e.Name())
		if e.Type().IsRegular() && isList && installed[pkg] {
			names = append(names, e.Name())
		}
	}

	type list struct {
		pkg  string
		text string
		err  error
	}
	jobs := make(chan string)
	out := make(chan list, 64)
	workers := min(runtime.GOMAXPROCS(0), 8)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for n := range jobs {
				b, err := t.ReadFile(dpkgInfo + "/" + n)
				pkg, _ := listPackage(n)
				out <- list{pkg: pkg, text: string(b), err: err}
			}
		})
	}
	go func() {
		defer close(jobs)
		for _, n := range names {
			select {
			case jobs <- n:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()

	var warns []string
	for l := range out {
		if l.err != nil {
			warns = append(warns, fmt.Sprintf("read dpkg file list of %s: %v", l.pkg, l.err))
			continue
		}
		owners.addLines(l.pkg, l.text)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(warns)
	return warns, nil
}
