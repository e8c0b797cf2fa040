package ospkg_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/ospkg"
	"github.com/imagegate/imagegate/internal/snapshot"
)

const zlibStanza = `Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 168
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.13.dfsg-1
Provides: libz1
Depends: libc6 (>= 2.14)
Breaks: libxml2 (<< 2.7.6.dfsg-2), texlive-binaries (<< 2009-12)
Conflicts: zlib1 (<= 1:1.0.4-7)
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 in gzip and PKZIP.  This package includes the shared library.
Homepage: http://zlib.net/
`

const opensslStanza = `Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.15-1~deb12u1)
Version: 3.0.15-1~deb12u1+b1
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 .
 It provides the libssl and libcrypto shared libraries.
`

var (
	zlib = snapshot.Package{Type: "deb", Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Arch: "amd64", SourceName: "zlib"}
	ssl  = snapshot.Package{Type: "deb", Name: "libssl3", Version: "3.0.15-1~deb12u1+b1", Arch: "amd64", SourceName: "openssl"}
)

func TestParseDpkgStatus(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []snapshot.Package
		wantWarns int
	}{
		{name: "two stanzas", in: zlibStanza + "\n" + opensslStanza, want: []snapshot.Package{ssl, zlib}},
		{name: "CRLF", in: strings.ReplaceAll(zlibStanza+"\n"+opensslStanza, "\n", "\r\n"), want: []snapshot.Package{ssl, zlib}},
		{name: "several blank and whitespace lines", in: "\n\n" + zlibStanza + "\n \n\t\n\n" + opensslStanza + "\n\n", want: []snapshot.Package{ssl, zlib}},
		{name: "no final newline", in: zlibStanza + "\n" + strings.TrimSuffix(opensslStanza, "\n"), want: []snapshot.Package{ssl, zlib}},
		{name: "no blank line at all is one stanza", in: zlibStanza + opensslStanza, want: []snapshot.Package{{Type: "deb", Name: "libssl3", Version: "3.0.15-1~deb12u1+b1", Arch: "amd64", SourceName: "openssl"}}},
		{
			name: "lower-case field names and comment lines",
			in:   "# comment\npackage: tiny\nstatus: install ok installed\nversion: 2.0\narchitecture: all\n",
			want: []snapshot.Package{{Type: "deb", Name: "tiny", Version: "2.0", Arch: "all"}},
		},
		{
			name: "source equal to name is dropped",
			in:   "Package: bash\nStatus: install ok installed\nSource: bash\nVersion: 5.2.15-2+b7\nArchitecture: amd64\n",
			want: []snapshot.Package{{Type: "deb", Name: "bash", Version: "5.2.15-2+b7", Arch: "amd64"}},
		},
		{
			name: "held and trigger-pending packages are installed",
			in: "Package: a\nStatus: hold ok installed\nVersion: 1\n\n" +
				"Package: b\nStatus: install ok triggers-pending\nVersion: 1\n\n" +
				"Package: c\nStatus: deinstall ok installed\nVersion: 1\n",
			want: []snapshot.Package{
				{Type: "deb", Name: "a", Version: "1"},
				{Type: "deb", Name: "b", Version: "1"},
				{Type: "deb", Name: "c", Version: "1"},
			},
		},
		{
			name: "not installed states are excluded",
			in: "Package: a\nStatus: install reinstreq half-installed\nVersion: 1\n\n" +
				"Package: b\nStatus: deinstall ok config-files\nVersion: 1\n\n" +
				"Package: c\nStatus: install ok unpacked\nVersion: 1\n\n" +
				"Package: d\nStatus: install ok half-configured\nVersion: 1\n\n" +
				"Package: e\nStatus: purge ok not-installed\nVersion: 1\n\n" +
				"Package: f\nVersion: 1\n\n" +
				"Package: g\nStatus: install reinstreq installed\nVersion: 1\n",
		},
		{
			name:      "stanzas without name or version are reported",
			in:        "Status: install ok installed\nVersion: 1\n\nPackage: x\nStatus: install ok installed\n\n" + zlibStanza,
			want:      []snapshot.Package{zlib},
			wantWarns: 1,
		},
		{name: "empty", in: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, warns := ospkg.ParseDpkgStatus([]byte(tc.in))
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("packages (-want +got):\n%s", d)
			}
			if len(warns) != tc.wantWarns {
				t.Errorf("warnings = %q, want %d", warns, tc.wantWarns)
			}
		})
	}
}

func FuzzParseDpkgStatus(f *testing.F) {
	f.Add([]byte(zlibStanza + "\n" + opensslStanza))
	f.Add([]byte("Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n Continued\r\n"))
	f.Add([]byte("Package: x\nSource: (\nStatus: install ok installed\nVersion: 1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, _ := ospkg.ParseDpkgStatus(in)
		if n := strings.Count(strings.ToLower(string(in)), "package"); len(pkgs) > n {
			t.Errorf("%d packages from %d Package fields", len(pkgs), n)
		}
		for _, p := range pkgs {
			if p.Type != "deb" || p.Name == "" || p.Version == "" || strings.ContainsAny(p.Name+p.Version, " \t\r\n") {
				t.Errorf("package %+v from %q", p, in)
			}
			if p.SourceName == p.Name {
				t.Errorf("SourceName repeats the name: %+v", p)
			}
		}
	})
}
