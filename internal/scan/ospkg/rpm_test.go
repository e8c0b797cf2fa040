package ospkg_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"

	_ "modernc.org/sqlite"
)

// rpmDB is what rpm itself says a database holds.
type rpmDB struct {
	pkgs   []snapshot.Package
	owners map[string]string
}

var srpmName = regexp.MustCompile(`^(.+)-[^-]+-[^-]+\.(?:no)?src\.rpm$`)

// queryRPM asks rpm for every package and file in the database at dbpath.
func queryRPM(t *testing.T, dbpath string, defines ...string) rpmDB {
	t.Helper()
	rpm := testenv.RequireTool(t, "rpm")
	args := []string{"--dbpath", dbpath}
	for _, d := range defines {
		args = append(args, "--define", d)
	}
	var db rpmDB
	out := run(t, rpm, append(args, "-qa", "--qf", `%{NAME}\t%{EVR}\t%{ARCH}\t%{SOURCERPM}\n`)...)
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if f[0] == "gpg-pubkey" {
			continue
		}
		p := snapshot.Package{Type: "rpm", Name: f[0], Version: f[1], Arch: f[2]}
		if m := srpmName.FindStringSubmatch(f[3]); m != nil && m[1] != f[0] {
			p.SourceName = m[1]
		}
		db.pkgs = append(db.pkgs, p)
	}
	slices.SortFunc(db.pkgs, comparePackages)
	db.owners = map[string]string{}
	out = run(t, rpm, append(args, "-qa", "--qf", `[%{FILENAMES}\t%{NAME}\n]`)...)
	for line := range strings.Lines(out) {
		p, name, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if p == "(none)" {
			continue // a package without files
		}
		if old, ok := db.owners[p]; !ok || name < old {
			db.owners[p] = name
		}
	}
	return db
}

func checkRPM(t *testing.T, root string, want rpmDB) {
	t.Helper()
	res, warns := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
	if len(warns) > 0 {
		t.Errorf("warnings: %q", warns)
	}
	if len(want.pkgs) == 0 {
		t.Fatal("rpm lists no packages")
	}
	if d := cmp.Diff(want.pkgs, res.Packages); d != "" {
		t.Errorf("packages differ from rpm -qa (-rpm +ours):\n%s", d)
	}
	bad := 0
	for p, name := range want.owners {
		if got, _ := res.Owners.Lookup(p); got != name && bad < 10 {
			bad++
			t.Errorf("Lookup(%s) = %q, rpm says %q", p, got, name)
		}
	}
}

// goRPMDBTestdata returns a Berkeley DB Packages file from a real CentOS
// or RHEL image, as go-rpmdb's module ships them for its own tests.
func goRPMDBTestdata(t testing.TB, name string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/knqyf263/go-rpmdb@v0.0.0-20210911072402-73bd0ce46c49").Output()
	testenv.Require(t, err == nil, "go mod download go-rpmdb: %v", err)
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download: %v: %s", err, out)
	}
	return filepath.Join(m.Dir, "pkg/testdata", name, "Packages")
}

func copyTo(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPackagesRPMBerkeleyDB reads real CentOS databases and compares with
// what rpm's read-only Berkeley DB backend finds in them.
func TestPackagesRPMBerkeleyDB(t *testing.T) {
	testenv.RequireTool(t, "rpm")
	for _, name := range []string{"centos5-plain", "centos6-many", "centos7-many", "centos8-modularitylabel"} {
		t.Run(name, func(t *testing.T) {
			src := goRPMDBTestdata(t, name)
			oracle := t.TempDir()
			copyTo(t, src, filepath.Join(oracle, "Packages"))
			want := queryRPM(t, oracle, "_db_backend bdb_ro")
			root := t.TempDir()
			copyTo(t, src, filepath.Join(root, "var/lib/rpm/Packages"))
			checkRPM(t, root, want)
		})
	}
}

// TestPackagesRPMSQLite converts a real CentOS database to rpm's SQLite
// backend with rpm itself, as on Fedora and RHEL 9, and reads it.
func TestPackagesRPMSQLite(t *testing.T) {
	rpmdb := testenv.RequireTool(t, "rpmdb")
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/sysimage/rpm")
	copyTo(t, goRPMDBTestdata(t, "centos7-many"), filepath.Join(dir, "Packages"))
	run(t, rpmdb, "--dbpath", dir, "--rebuilddb", "--define", "_db_backend sqlite")
	if _, err := os.Stat(filepath.Join(dir, "rpmdb.sqlite")); err != nil {
		t.Fatalf("rpmdb --rebuilddb made no SQLite database: %v", err)
	}
	// Fedora's layout: /var/lib/rpm links to the sysimage folder.
	if err := os.MkdirAll(filepath.Join(root, "var/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../usr/lib/sysimage/rpm", filepath.Join(root, "var/lib/rpm")); err != nil {
		t.Fatal(err)
	}
	want := queryRPM(t, dir)
	before := snapshotDir(t, dir)
	checkRPM(t, root, want)
	if d := cmp.Diff(before, snapshotDir(t, dir)); d != "" {
		t.Errorf("reading the database changed its folder (-before +after):\n%s", d)
	}

	t.Run("unapplied write-ahead log", func(t *testing.T) {
		// A writer that has not checkpointed leaves rows only in the
		// -wal file; they must still be read.
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "rpmdb.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		for _, q := range []string{"PRAGMA journal_mode=WAL", "PRAGMA wal_autocheckpoint=0", "DELETE FROM Packages WHERE hnum = (SELECT MIN(hnum) FROM Packages)"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if fi, err := os.Stat(filepath.Join(dir, "rpmdb.sqlite-wal")); err != nil || fi.Size() == 0 {
			t.Fatalf("no write-ahead log to test with: %v", err)
		}
		res, _ := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
		if len(res.Packages) != len(want.pkgs)-1 {
			t.Errorf("read %d packages after deleting one of %d in the log", len(res.Packages), len(want.pkgs))
		}
	})
}

// snapshotDir lists a folder's files with their sizes and times.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fmt.Sprintf("%v %v %d", fi.ModTime(), fi.Mode(), fi.Size())
	}
	return m
}

const fixtureSpec = `Name: imagegate-fixture
Epoch: 3
Version: 1.2
Release: 4.test
Summary: imagegate test fixture
License: MIT
BuildArch: noarch

%description
A package built by imagegate's tests.

%package -n imagegate-fixture-data
Summary: imagegate test fixture data

%description -n imagegate-fixture-data
Data built by imagegate's tests.

%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/imagegate-fixture
printf '#!/bin/sh\necho hi\n' > %{buildroot}/usr/bin/imagegate-fixture
echo data > %{buildroot}/usr/share/imagegate-fixture/data.txt

%files
/usr/bin/imagegate-fixture

%files -n imagegate-fixture-data
/usr/share/imagegate-fixture
`

// TestPackagesRPMBuilt builds two packages (one a subpackage, so its
// source differs from its name) with an epoch, installs them into an
// image's database with rpm, and reads them back.
func TestPackagesRPMBuilt(t *testing.T) {
	rpmbuild := testenv.RequireTool(t, "rpmbuild")
	rpm := testenv.RequireTool(t, "rpm")
	top := t.TempDir()
	spec := filepath.Join(top, "fixture.spec")
	if err := os.WriteFile(spec, []byte(fixtureSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, rpmbuild, "--define", "_topdir "+top, "--define", "_tmppath "+top, "--nodeps", "-bb", spec)
	built, _ := filepath.Glob(filepath.Join(top, "RPMS/noarch/*.rpm"))
	if len(built) != 2 {
		t.Fatalf("rpmbuild made %v", built)
	}
	root := t.TempDir()
	dir := filepath.Join(root, "var/lib/rpm")
	run(t, rpm, "--dbpath", dir, "--initdb")
	run(t, rpm, append([]string{"--dbpath", dir, "-i", "--justdb", "--nodeps", "--noscripts", "--ignoreos"}, built...)...)

	want := []snapshot.Package{
		{Type: "rpm", Name: "imagegate-fixture", Version: "3:1.2-4.test", Arch: "noarch"},
		{Type: "rpm", Name: "imagegate-fixture-data", Version: "3:1.2-4.test", Arch: "noarch", SourceName: "imagegate-fixture"},
	}
	oracle := queryRPM(t, dir)
	if d := cmp.Diff(want, oracle.pkgs); d != "" {
		t.Fatalf("rpm -qa disagrees with the test's expectation (-want +rpm):\n%s", d)
	}
	checkRPM(t, root, oracle)
	res, _ := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
	checkOwners(t, res.Owners, map[string]string{
		"/usr/bin/imagegate-fixture":               "imagegate-fixture",
		"/bin/imagegate-fixture":                   "imagegate-fixture",
		"/usr/share/imagegate-fixture/data.txt":    "imagegate-fixture-data",
		"/usr/share/imagegate-fixture":             "imagegate-fixture-data",
		"/usr/share/imagegate-fixture/missing.txt": "",
	})
}

func TestPackagesRPMDamaged(t *testing.T) {
	tests := []struct {
		name, file string
		data       []byte
	}{
		{"truncated Berkeley DB", "Packages", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x15, 0x06, 0}},
		{"not a Berkeley DB", "Packages", make([]byte, 4096)},
		{"not SQLite", "rpmdb.sqlite", []byte("SQLite format 3\x00 but not really")},
		{"ndb", "Packages.db", make([]byte, 4096)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, map[string]string{
				"/var/lib/rpm/" + tc.file: string(tc.data),
				"/var/lib/dpkg/status":    "Package: still-read\nStatus: install ok installed\nVersion: 1\n",
			})
			res, warns := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
			if len(warns) != 1 || !strings.Contains(warns[0], "/var/lib/rpm/"+tc.file) {
				t.Errorf("warnings = %q, want one naming the database", warns)
			}
			if len(res.Packages) != 1 || res.Packages[0].Name != "still-read" {
				t.Errorf("packages = %+v, want the dpkg one still read", res.Packages)
			}
		})
	}
}
