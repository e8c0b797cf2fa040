package ospkg_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/ospkg"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

var apkWant = []snapshot.Package{
	{Type: "apk", Name: "alpine-baselayout-data", Version: "3.6.5-r0", Arch: "x86_64", SourceName: "alpine-baselayout"},
	{Type: "apk", Name: "busybox", Version: "1.36.1-r29", Arch: "x86_64"},
	{Type: "apk", Name: "ca-certificates-bundle", Version: "20240705-r0", Arch: "x86_64", SourceName: "ca-certificates"},
	{Type: "apk", Name: "libcrypto3", Version: "3.3.2-r1", Arch: "x86_64", SourceName: "openssl"},
	{Type: "apk", Name: "musl", Version: "1.2.5-r0", Arch: "x86_64"},
}

var apkOwners = map[string]string{
	"/etc/passwd":                        "alpine-baselayout-data",
	"/etc/apk/world":                     "alpine-baselayout-data",
	"/usr/lib/os-release":                "alpine-baselayout-data",
	"/lib/ld-musl-x86_64.so.1":           "musl",
	"/usr/lib/ld-musl-x86_64.so.1":       "musl", // through the usr-merge alias
	"/bin/busybox":                       "busybox",
	"/etc/securetty":                     "busybox",
	"/usr/lib/libcrypto.so.3":            "libcrypto3",
	"/usr/lib/engines-3/afalg.so":        "libcrypto3",
	"/etc/ssl/certs/ca-certificates.crt": "ca-certificates-bundle",
	"/etc":                               "alpine-baselayout-data", // listed by several: the first name wins
	"/etc/shadow":                        "",
}

func readAPKFixture(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/apk/installed")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseAPKInstalled(t *testing.T) {
	data := readAPKFixture(t)
	tests := []struct {
		name string
		in   string
	}{
		{"as written by apk", string(data)},
		{"CRLF", strings.ReplaceAll(string(data), "\n", "\r\n")},
		{"no final newline", strings.TrimRight(string(data), "\n")},
		{"extra blank lines", strings.ReplaceAll(string(data), "\n\n", "\n\n\n\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, owners, warns := ospkg.ParseAPKInstalled([]byte(tc.in))
			if len(warns) > 0 {
				t.Errorf("warnings: %q", warns)
			}
			if d := cmp.Diff(apkWant, pkgs); d != "" {
				t.Errorf("packages (-want +got):\n%s", d)
			}
			checkOwners(t, owners, apkOwners)
		})
	}

	t.Run("entry without a name", func(t *testing.T) {
		pkgs, _, warns := ospkg.ParseAPKInstalled([]byte("V:1.0-r0\nA:x86_64\n\nP:ok\nV:2-r0\n"))
		want := []snapshot.Package{{Type: "apk", Name: "ok", Version: "2-r0"}}
		if d := cmp.Diff(want, pkgs); d != "" {
			t.Errorf("packages (-want +got):\n%s", d)
		}
		if len(warns) != 1 {
			t.Errorf("warnings = %q, want one", warns)
		}
	})
}

func checkOwners(t *testing.T, o *ospkg.Owners, want map[string]string) {
	t.Helper()
	for p, w := range want {
		got, ok := o.Lookup(p)
		if got != w || ok != (w != "") {
			t.Errorf("Lookup(%s) = %q, %v; want %q", p, got, ok, w)
		}
	}
}

func TestPackagesAPKRoot(t *testing.T) {
	data := readAPKFixture(t)
	for _, layout := range []string{"lib", "usr-merged"} {
		t.Run(layout, func(t *testing.T) {
			root := t.TempDir()
			db := "/lib/apk/db/installed"
			if layout == "usr-merged" {
				db = "/usr/lib/apk/db/installed"
				if err := os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
					t.Fatal(err)
				}
			}
			writeFiles(t, root, map[string]string{db: string(data), "/etc/os-release": "ID=alpine\n"})
			res, warns := mustPackages(t, &source.Tree{Dir: root, RootFS: true})
			if len(warns) > 0 {
				t.Errorf("warnings: %q", warns)
			}
			if d := cmp.Diff(apkWant, res.Packages); d != "" {
				t.Errorf("packages (-want +got):\n%s", d)
			}
			checkOwners(t, res.Owners, apkOwners)
		})
	}
}

func FuzzParseAPKInstalled(f *testing.F) {
	data, err := os.ReadFile("testdata/apk/installed")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("P:x\nV:1\nF:\nR:\n"))
	f.Add([]byte("R:../../etc/passwd\nP:x\nV:1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, owners, _ := ospkg.ParseAPKInstalled(in)
		for _, p := range pkgs {
			if p.Type != "apk" || p.Name == "" || p.Version == "" {
				t.Errorf("package %+v from %q", p, in)
			}
		}
		if owners.Len() > strings.Count(string(in), "\n")+1 {
			t.Errorf("%d owned paths from %d lines", owners.Len(), strings.Count(string(in), "\n")+1)
		}
	})
}
