package ospkg_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/ospkg"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

func hostTarget() *source.Tree { return &source.Tree{Dir: "/", RootFS: true} }

func mustPackages(tb testing.TB, tg *source.Tree) (ospkg.Result, []string) {
	tb.Helper()
	res, warns, err := ospkg.Packages(context.Background(), tg)
	if err != nil {
		tb.Fatalf("Packages(%s): %v", tg.Dir, err)
	}
	return res, warns
}

// TestPackagesHostDpkg compares the scan of this machine with what dpkg
// itself reports, package by package.
func TestPackagesHostDpkg(t *testing.T) {
	testenv.RequireTool(t, "dpkg-query")
	var want []snapshot.Package
	ii := 0
	out := run(t, "dpkg-query", "-W", "-f", `${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\n`)
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		abbrev := strings.TrimSpace(f[0])
		if abbrev == "ii" {
			ii++
		}
		// Installed (or with triggers awaited or pending), whatever is
		// wanted (i, h, r, p), and with no error flag.
		if len(abbrev) != 2 || !strings.ContainsRune("iWt", rune(abbrev[1])) {
			continue
		}
		p := snapshot.Package{Type: "deb", Name: f[1], Version: f[2], Arch: f[3]}
		if f[4] != f[1] {
			p.SourceName = f[4]
		}
		want = append(want, p)
	}
	res, warns := mustPackages(t, hostTarget())
	if len(warns) > 0 {
		t.Errorf("warnings on this machine: %q", warns)
	}
	var got []snapshot.Package
	for _, p := range res.Packages {
		if p.Type == "deb" {
			got = append(got, p)
		}
	}
	if len(got) != ii {
		t.Errorf("found %d deb packages, dpkg-query lists %d as ii", len(got), ii)
	}
	slices.SortFunc(want, comparePackages)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("packages differ from dpkg-query (-want +got):\n%s", d)
	}
}

func comparePackages(a, b snapshot.Package) int {
	return strings.Compare(a.Type+"\x00"+a.Name+"\x00"+a.Arch+"\x00"+a.Version, b.Type+"\x00"+b.Name+"\x00"+b.Arch+"\x00"+b.Version)
}

// TestOwnersHost asks dpkg -S who owns a set of paths and expects the
// same answers, including through the usr-merge alias.
func TestOwnersHost(t *testing.T) {
	testenv.RequireTool(t, "dpkg")
	res, _ := mustPackages(t, hostTarget())
	if res.Owners.Len() < 1000 {
		t.Fatalf("only %d owned paths on this machine", res.Owners.Len())
	}
	paths := []string{"/bin/bash", "/usr/bin/bash", "/usr/bin/dpkg", "/usr/bin/git", "/etc/os-release", "/usr/lib/os-release", "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/rpm"}
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		want := dpkgOwner(t, p)
		got, ok := res.Owners.Lookup(p)
		if want == "" {
			if ok {
				t.Errorf("Lookup(%s) = %q, dpkg -S knows no owner", p, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("Lookup(%s) = %q, %v; dpkg -S says %q", p, got, ok, want)
		}
	}
	if _, ok := res.Owners.Lookup("/no/such/file"); ok {
		t.Error("Lookup(/no/such/file) found an owner")
	}
}

// dpkgOwner is the package dpkg -S names for p or its usr-merge alias,
// without ":arch"; "" when dpkg knows neither.
func dpkgOwner(tb testing.TB, p string) string {
	tb.Helper()
	alts := []string{p}
	if rest, ok := strings.CutPrefix(p, "/usr"); ok {
		alts = append(alts, rest)
	} else {
		alts = append(alts, "/usr"+p)
	}
	for _, a := range alts {
		out, err := execOutput("dpkg", "-S", a)
		if err != nil {
			continue
		}
		for line := range strings.Lines(out) {
			// "pkg:arch: /path" or "pkg1, pkg2: /dir".
			owners, path, ok := strings.Cut(strings.TrimSpace(line), ": ")
			if !ok || path != a || strings.HasPrefix(line, "diversion ") {
				continue
			}
			names := strings.Split(owners, ", ")
			for i, n := range names {
				names[i], _, _ = strings.Cut(n, ":")
			}
			slices.Sort(names)
			return names[0]
		}
	}
	return ""
}

// TestPackagesDpkgRoot scans an image root holding a copy of this
// machine's dpkg records for a few packages, in each form dpkg leaves.
func TestPackagesDpkgRoot(t *testing.T) {
	testenv.RequireTool(t, "dpkg-query")
	status := func(pkgs ...string) string {
		return run(t, "dpkg-query", append([]string{"-s"}, pkgs...)...)
	}
	list := func(pkg string) string {
		return run(t, "dpkg-query", "-L", pkg)
	}
	bash := hostPackage(t, "bash")
	base := hostPackage(t, "base-files")
	libc := hostPackage(t, "libc6")

	t.Run("status and lists", func(t *testing.T) {
		root := t.TempDir()
		held := strings.Replace(status("base-files"), "Status: install ok installed", "Status: hold ok installed", 1)
		removed := "Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\nArchitecture: all\n"
		half := "Package: half\nStatus: install reinstreq half-installed\nVersion: 1.0\nArchitecture: all\n"
		writeFiles(t, root, map[string]string{
			"/var/lib/dpkg/status":                   status("bash") + "\n" + removed + "\n\n" + held + "\n" + half,
			"/var/lib/dpkg/info/bash.list":           list("bash"),
			"/var/lib/dpkg/info/libc6:amd64.list":    list("libc6"),
			"/var/lib/dpkg/info/base-files.list":     list("base-files"),
			"/var/lib/dpkg/info/base-files.md5sums":  "not a list",
			"/var/lib/dpkg/info/base-files.postinst": "#!/bin/sh\n",
			// Left behind by a removal: not installed, owns nothing.
			"/var/lib/dpkg/info/gone.list": "/usr/bin/ls\n",
		})
		// A link in the image pointing at this machine's files must not
		// be followed.
		if err := os.Symlink("/var/lib/dpkg/info/coreutils.list", filepath.Join(root, "var/lib/dpkg/info/coreutils.list")); err != nil {
			t.Fatal(err)
		}
		res, warns := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
		if len(warns) > 0 {
			t.Errorf("warnings: %q", warns)
		}
		if d := cmp.Diff([]snapshot.Package{base, bash}, res.Packages); d != "" {
			t.Errorf("packages (-want +got):\n%s", d)
		}
		for p, want := range map[string]string{"/usr/bin/bash": "bash", "/bin/bash": "bash", "/etc/debian_version": "base-files", "/usr/bin/ls": "", "/usr/lib/x86_64-linux-gnu/libc.so.6": "" /* its list is there, its status is not */} {
			got, _ := res.Owners.Lookup(p)
			if got != want {
				t.Errorf("Lookup(%s) = %q, want %q", p, got, want)
			}
		}
	})

	t.Run("links stay inside the image", func(t *testing.T) {
		// An absolute link to /var/lib/dpkg/status means the image's own
		// file (here itself, so nothing), never this machine's.
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/var/lib/dpkg/status", filepath.Join(root, "var/lib/dpkg/status")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/var/lib/dpkg", filepath.Join(root, "var/lib/dpkg/status.d")); err != nil {
			t.Fatal(err)
		}
		res, _ := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
		if len(res.Packages) != 0 || res.Owners.Len() != 0 {
			t.Errorf("read %d packages and %d paths through links", len(res.Packages), res.Owners.Len())
		}
	})

	t.Run("updates journal", func(t *testing.T) {
		root := t.TempDir()
		newer := strings.Replace(status("bash"), "Version: "+bash.Version, "Version: 99:"+bash.Version, 1)
		gone := strings.Replace(status("base-files"), "Status: install ok installed", "Status: purge ok not-installed", 1)
		writeFiles(t, root, map[string]string{
			"/var/lib/dpkg/status":        status("bash", "base-files"),
			"/var/lib/dpkg/updates/0001":  gone,
			"/var/lib/dpkg/updates/0002":  newer,
			"/var/lib/dpkg/updates/tmp.i": "Package: tmp\nStatus: install ok installed\nVersion: 1\n",
		})
		res, _ := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
		want := bash
		want.Version = "99:" + bash.Version
		if d := cmp.Diff([]snapshot.Package{want}, res.Packages); d != "" {
			t.Errorf("packages (-want +got):\n%s", d)
		}
	})

	t.Run("distroless status.d", func(t *testing.T) {
		root := t.TempDir()
		// Distroless writes the control paragraph without Status.
		noStatus := func(s string) string {
			var b strings.Builder
			for line := range strings.Lines(s) {
				if !strings.HasPrefix(line, "Status:") {
					b.WriteString(line)
				}
			}
			return b.String()
		}
		md5, err := os.ReadFile("/var/lib/dpkg/info/libc6:amd64.md5sums")
		testenv.Require(t, err == nil, "no libc6 md5sums on this machine: %v", err)
		writeFiles(t, root, map[string]string{
			"/var/lib/dpkg/status.d/base":          noStatus(status("base-files")),
			"/var/lib/dpkg/status.d/libc6":         noStatus(status("libc6")),
			"/var/lib/dpkg/status.d/libc6.md5sums": string(md5),
		})
		res, warns := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
		if len(warns) > 0 {
			t.Errorf("warnings: %q", warns)
		}
		if d := cmp.Diff([]snapshot.Package{base, libc}, res.Packages); d != "" {
			t.Errorf("packages (-want +got):\n%s", d)
		}
		if got, _ := res.Owners.Lookup("/usr/lib/x86_64-linux-gnu/libc.so.6"); got != "libc6" {
			t.Errorf("Lookup(libc.so.6) = %q, want libc6", got)
		}
	})

	t.Run("unpacked package", func(t *testing.T) {
		// dpkg-deb -x of a real package next to its status paragraph: the
		// files are there and Lookup finds them through the alias.
		testenv.RequireTool(t, "dpkg-deb")
		testenv.RequireTool(t, "apt-get")
		debs := t.TempDir()
		cmd := execIn(debs, "apt-get", "download", "hello")
		out, err := cmd.CombinedOutput()
		testenv.Require(t, err == nil, "apt-get download hello (needs Debian's package archive): %v\n%s", err, out)
		matches, _ := filepath.Glob(filepath.Join(debs, "hello_*.deb"))
		if len(matches) != 1 {
			t.Fatalf("downloaded %v", matches)
		}
		root := t.TempDir()
		run(t, "dpkg-deb", "-x", matches[0], root)
		fields := run(t, "dpkg-deb", "-f", matches[0], "Package", "Version", "Architecture")
		var list strings.Builder
		for line := range strings.Lines(run(t, "dpkg-deb", "-c", matches[0])) {
			f := strings.Fields(line)
			p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
			if p == "" {
				p = "/."
			}
			list.WriteString(p + "\n")
		}
		writeFiles(t, root, map[string]string{
			"/var/lib/dpkg/status":          fields + "Status: install ok installed\n",
			"/var/lib/dpkg/info/hello.list": list.String(),
		})
		res, _ := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
		if len(res.Packages) != 1 || res.Packages[0].Name != "hello" || res.Packages[0].Version == "" {
			t.Fatalf("packages = %+v", res.Packages)
		}
		if _, err := os.Stat(filepath.Join(root, "usr/bin/hello")); err != nil {
			t.Fatal(err)
		}
		if got, _ := res.Owners.Lookup("/usr/bin/hello"); got != "hello" {
			t.Errorf("Lookup(/usr/bin/hello) = %q, want hello", got)
		}
	})
}

// hostPackage is a package of this machine as dpkg-query describes it.
func hostPackage(tb testing.TB, name string) snapshot.Package {
	tb.Helper()
	f := strings.Split(run(tb, "dpkg-query", "-W", "-f", `${Package}\t${Version}\t${Architecture}\t${source:Package}`, name), "\t")
	p := snapshot.Package{Type: "deb", Name: f[0], Version: f[1], Arch: f[2]}
	if f[3] != f[0] {
		p.SourceName = f[3]
	}
	return p
}

func TestPackagesCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := ospkg.Packages(ctx, hostTarget()); err == nil {
		t.Error("Packages with a cancelled context returned no error")
	}
}

func BenchmarkPackagesHost(b *testing.B) {
	_, err := os.Stat("/var/lib/dpkg/status")
	testenv.Require(b, err == nil, "no dpkg database on this machine: %v", err)
	for b.Loop() {
		res, _, err := ospkg.Packages(context.Background(), hostTarget())
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Packages) == 0 {
			b.Fatal("no packages")
		}
	}
}
