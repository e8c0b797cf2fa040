package sbom_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sbom"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func mustSnapshot(tb testing.TB, name string) *snapshot.Snapshot {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	s, err := snapshot.Decode(f)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustWrite(tb testing.TB, s *snapshot.Snapshot) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := sbom.Formats.Write(&b, sbom.CycloneDXJSON, s); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func mustDecode(tb testing.TB, data []byte) *cdx.BOM {
	tb.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		tb.Fatal(err)
	}
	return &bom
}

// components indexes every component of a BOM, nested ones included, by
// bom-ref; a bom-ref seen twice fails the test (CycloneDX requires them
// unique).
func components(tb testing.TB, bom *cdx.BOM) map[string]cdx.Component {
	tb.Helper()
	out := map[string]cdx.Component{}
	var walk func([]cdx.Component)
	walk = func(cs []cdx.Component) {
		for _, c := range cs {
			if _, dup := out[c.BOMRef]; dup {
				tb.Errorf("bom-ref %q appears twice", c.BOMRef)
			}
			out[c.BOMRef] = c
			if c.Components != nil {
				walk(*c.Components)
			}
		}
	}
	if bom.Metadata != nil && bom.Metadata.Component != nil {
		walk([]cdx.Component{*bom.Metadata.Component})
	}
	if bom.Components != nil {
		walk(*bom.Components)
	}
	return out
}

func properties(c cdx.Component) map[string][]string {
	out := map[string][]string{}
	if c.Properties != nil {
		for _, p := range *c.Properties {
			out[p.Name] = append(out[p.Name], p.Value)
		}
	}
	return out
}

// mustSchema compiles the CycloneDX 1.6 JSON schema shipped in testdata,
// with the two schemas it refers to, and format assertions on (date-time,
// iri-reference): no document is fetched from the network.
func mustSchema(tb testing.TB) *jsonschema.Schema {
	tb.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range []string{"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"} {
		f, err := os.Open(filepath.Join("testdata", "cyclonedx", name))
		if err != nil {
			tb.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		if err := c.AddResource("http://cyclonedx.org/schema/"+name, doc); err != nil {
			tb.Fatal(err)
		}
	}
	sch, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		tb.Fatal(err)
	}
	return sch
}

func validate(sch *jsonschema.Schema, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(doc)
}

func TestCycloneDXGolden(t *testing.T) {
	got := mustWrite(t, mustSnapshot(t, "snapshot.json"))
	p := filepath.Join("testdata", "cyclonedx.golden.json")
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", p, diff)
	}
}

func TestCycloneDXValidatesAgainstSchema(t *testing.T) {
	sch := mustSchema(t)
	full := mustSnapshot(t, "snapshot.json")
	bare := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/x", ScannedAt: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Exec: snapshot.ExecNone}
	apk := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "oci:./alpine", Exec: snapshot.ExecNone,
		OS:       snapshot.OS{ID: "alpine", VersionID: "3.20.3"},
		Packages: []snapshot.Package{{Type: snapshot.PackageAPK, Name: "musl", Version: "1.2.5-r0", Arch: "x86_64"}},
		Image:    &snapshot.Image{Reference: "alpine", Digest: "sha256:1e42bbe2508154c9126d48c2b8a75420c3544343bf86fd041fb7527e017a4b4a"}}
	for name, s := range map[string]*snapshot.Snapshot{"full": full, "bare": bare, "apk": apk} {
		t.Run(name, func(t *testing.T) {
			if err := validate(sch, mustWrite(t, s)); err != nil {
				t.Errorf("not a valid CycloneDX 1.6 document: %v", err)
			}
		})
	}

	// The validator must be able to say no: an unknown component type and
	// a timestamp that is not one are refused.
	for name, edit := range map[string]func(string) string{
		"component type": func(s string) string {
			return strings.Replace(s, `"type": "platform"`, `"type": "runtime"`, 1)
		},
		"timestamp": func(s string) string {
			return strings.Replace(s, `"timestamp": "2026-11-25T06:00:00Z"`, `"timestamp": "yesterday"`, 1)
		},
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			doc := string(mustWrite(t, full))
			bad := edit(doc)
			if bad == doc {
				t.Fatal("the edit changed nothing: the test no longer tests")
			}
			if err := validate(sch, []byte(bad)); err == nil {
				t.Error("an invalid document validated")
			}
		})
	}
}

// The point of an imagegate SBOM: the 2019 incident is in it, module by
// module, with the evidence.
func TestCycloneDXTellsTheSQLite3Story(t *testing.T) {
	bom := mustDecode(t, mustWrite(t, mustSnapshot(t, "snapshot.json")))
	if bom.SpecVersion != cdx.SpecVersion1_6 {
		t.Errorf("specVersion = %v, want 1.6", bom.SpecVersion)
	}
	cs := components(t, bom)
	for _, tc := range []struct {
		ref  string
		want map[string][]string
	}{
		{"runtime/python@3.7/module/sqlite3", map[string][]string{
			sbom.PropPart: {sbom.PartStandardLibrary}, sbom.PropStatus: {"import-error"}, sbom.PropKind: {"package"},
			sbom.PropEvidence: {"Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\nModuleNotFoundError: No module named '_sqlite3'"},
		}},
		{"runtime/python@3.7/module/_sqlite3", map[string][]string{
			sbom.PropPart: {sbom.PartStandardLibrary}, sbom.PropStatus: {"missing"}, sbom.PropKind: {"extension"},
		}},
		{"runtime/python@3.7/module/ssl", map[string][]string{
			sbom.PropPart: {sbom.PartStandardLibrary}, sbom.PropStatus: {"broken"}, sbom.PropKind: {"pure"},
			sbom.PropEvidence:       {"_ssl needs libssl.so.1.1 & libcrypto.so.1.1"},
			sbom.PropMissingLibrary: {"libcrypto.so.1.1", "libssl.so.1.1"},
		}},
		{"runtime/python@3.7", map[string][]string{
			sbom.PropPath: {"/opt/hostedtoolcache/Python/3.7.16/x64"}, sbom.PropExecutable: {"/opt/hostedtoolcache/Python/3.7.16/x64/bin/python3.7"},
			sbom.PropOrigin: {"toolcache"}, sbom.PropModules: {"4"}, sbom.PropModulesNotOK: {"3"},
		}},
		// Two installs of one series are named by install root, as diff and
		// check name them.
		{"runtime/python@3.11[/usr]/module/tkinter", map[string][]string{sbom.PropPart: {sbom.PartStandardLibrary}, sbom.PropStatus: {"missing"}}},
		{"runtime/python@3.11[/opt/hostedtoolcache/Python/*/x64]/module/sqlite3", map[string][]string{
			sbom.PropPart: {sbom.PartStandardLibrary}, sbom.PropStatus: {"ok"}, sbom.PropKind: {"package"},
		}},
		{"tool/php", map[string][]string{sbom.PropPath: {"/usr/bin/php"}, sbom.PropStatus: {"failed"}, sbom.PropEvidence: {"exit status 127"}}},
		{"tool/php[/usr/local/bin/php]", map[string][]string{sbom.PropPath: {"/usr/local/bin/php"}}},
		{"image", map[string][]string{
			sbom.PropSource: {"registry:registry.example.com/ci/ubuntu-22.04:2026.11.25"}, sbom.PropExec: {"chroot"}, sbom.PropArchitecture: {"amd64"},
			sbom.PropConfigDigest: {"sha256:0f5a0b8a6b0c84b8b4a1c26a9e8a8e3c5e2b1d5c2f2c8e0e5d0a2e1c4b7f9a3d"},
			sbom.PropWarning:      {"tool php: version probe failed"},
		}},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			c, ok := cs[tc.ref]
			if !ok {
				t.Fatalf("no component %q", tc.ref)
			}
			if diff := cmp.Diff(tc.want, properties(c)); diff != "" {
				t.Errorf("properties (-want +got):\n%s", diff)
			}
		})
	}
	if c := cs["runtime/python@3.7/module/sqlite3"]; c.Name != "sqlite3" || c.Version != "3.7.16" || c.Type != cdx.ComponentTypeLibrary {
		t.Errorf("sqlite3 component = %s %s %s, want library sqlite3 3.7.16", c.Type, c.Name, c.Version)
	}
	if c := cs["runtime/python@3.7"]; c.Type != cdx.ComponentTypePlatform || c.Name != "python" || c.Version != "3.7.16" {
		t.Errorf("runtime component = %s %s %s, want platform python 3.7.16", c.Type, c.Name, c.Version)
	}
}

func TestPackageURLs(t *testing.T) {
	debian := snapshot.OS{ID: "debian", VersionID: "12", Codename: "bookworm"}
	for _, tc := range []struct {
		name string
		os   snapshot.OS
		pkg  snapshot.Package
		ref  string
		want string
	}{
		{"deb with epoch and source", debian, snapshot.Package{Type: "deb", Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Arch: "amd64", SourceName: "zlib"},
			"package/deb/zlib1g:amd64", "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib"},
		{"deb plus sign", debian, snapshot.Package{Type: "deb", Name: "libsqlite3-0", Version: "3.40.1-2+deb12u2", Arch: "amd64"},
			"package/deb/libsqlite3-0:amd64", "pkg:deb/debian/libsqlite3-0@3.40.1-2%2Bdeb12u2?arch=amd64&distro=debian-12"},
		{"ubuntu", snapshot.OS{ID: "ubuntu", VersionID: "22.04"}, snapshot.Package{Type: "deb", Name: "git", Version: "1:2.34.1-1ubuntu1.11", Arch: "amd64"},
			"package/deb/git:amd64", "pkg:deb/ubuntu/git@1%3A2.34.1-1ubuntu1.11?arch=amd64&distro=ubuntu-22.04"},
		{"debian testing has a codename only", snapshot.OS{ID: "debian", Codename: "trixie"}, snapshot.Package{Type: "deb", Name: "bash", Version: "5.2.37-1", Arch: "amd64"},
			"package/deb/bash:amd64", "pkg:deb/debian/bash@5.2.37-1?arch=amd64&distro=debian-trixie"},
		{"no os-release", snapshot.OS{}, snapshot.Package{Type: "deb", Name: "bash", Version: "5.2.37-1"},
			"package/deb/bash", "pkg:deb/debian/bash@5.2.37-1"},
		{"rpm epoch is a qualifier", snapshot.OS{ID: "rocky", VersionID: "9.4"}, snapshot.Package{Type: "rpm", Name: "openssl-libs", Version: "1:3.0.7-27.el9", Arch: "x86_64", SourceName: "openssl"},
			"package/rpm/openssl-libs:x86_64", "pkg:rpm/rocky/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rocky-9.4&epoch=1&upstream=openssl"},
		{"rpm without epoch", snapshot.OS{ID: "fedora", VersionID: "40"}, snapshot.Package{Type: "rpm", Name: "bash", Version: "5.2.26-3.fc40", Arch: "x86_64"},
			"package/rpm/bash:x86_64", "pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40"},
		{"apk", snapshot.OS{ID: "alpine", VersionID: "3.20.3"}, snapshot.Package{Type: "apk", Name: "libcrypto3", Version: "3.3.2-r1", Arch: "x86_64", SourceName: "openssl"},
			"package/apk/libcrypto3:x86_64", "pkg:apk/alpine/libcrypto3@3.3.2-r1?arch=x86_64&distro=alpine-3.20.3&upstream=openssl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/x", OS: tc.os, Packages: []snapshot.Package{tc.pkg}}
			c, ok := components(t, mustDecode(t, mustWrite(t, s)))[tc.ref]
			if !ok {
				t.Fatalf("no component %q", tc.ref)
			}
			if c.PackageURL != tc.want {
				t.Errorf("purl = %s\nwant   %s", c.PackageURL, tc.want)
			}
		})
	}

	cs := components(t, mustDecode(t, mustWrite(t, mustSnapshot(t, "snapshot.json"))))
	for ref, want := range map[string]string{
		"runtime/python@3.7/package/Jinja2":         "pkg:pypi/jinja2@3.1.4",
		"runtime/python@3.7/package/zope.interface": "pkg:pypi/zope-interface@7.1.1",
		"runtime/node@20/package/@angular/cli":      "pkg:npm/%40angular/cli@19.0.2",
		"runtime/node@20/package/npm":               "pkg:npm/npm@10.8.2",
		"image": "pkg:oci/ubuntu-22.04@sha256%3A6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b" +
			"?arch=amd64&repository_url=registry.example.com/ci/ubuntu-22.04&tag=2026.11.25",
	} {
		if got := cs[ref].PackageURL; got != want {
			t.Errorf("%s: purl = %s\nwant %s", ref, got, want)
		}
	}
}

func TestCycloneDXIsDeterministic(t *testing.T) {
	s := mustSnapshot(t, "snapshot.json")
	a, b := mustWrite(t, s), mustWrite(t, s)
	if !bytes.Equal(a, b) {
		t.Fatal("two renderings of one snapshot differ")
	}
	serial := func(data []byte) string {
		var doc struct{ SerialNumber string }
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.SerialNumber
	}
	s.ScannedAt = s.ScannedAt.Add(time.Hour)
	if serial(a) == serial(mustWrite(t, s)) {
		t.Error("a rescan (another scannedAt) kept the serial number of the first scan")
	}
}
