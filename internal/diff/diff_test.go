package diff_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// row is the part of a Change the classification tests look at.
type row struct {
	ID, Class  string
	Unexpected bool
	Evidence   string
}

func rows(r *diff.Report) []row {
	out := []row{}
	for _, c := range r.Changes {
		out = append(out, row{c.ID, c.Class, c.Unexpected, c.Evidence})
	}
	return out
}

func snap(mod func(s *snapshot.Snapshot)) *snapshot.Snapshot {
	s := &snapshot.Snapshot{
		Schema: snapshot.SchemaV1, Source: "dir:/image", Exec: "local",
		ScannedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		OS:        snapshot.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		Packages: []snapshot.Package{
			{Type: "deb", Name: "libsqlite3-0", Version: "3.40.1-2+deb12u1", Arch: "amd64"},
			{Type: "deb", Name: "libssl3", Version: "3.0.15-1~deb12u1", Arch: "amd64"},
			{Type: "deb", Name: "tzdata", Version: "2024a-0+deb12u1", Arch: "all"},
		},
		Runtimes: []snapshot.Runtime{
			python("3.7.16", mods("sqlite3", "ok", "ssl", "ok", "json", "ok")),
			python("3.8.18", mods("sqlite3", "ok", "ssl", "ok")),
			{Kind: "node", Version: "20.10.0", Path: "/opt/hostedtoolcache/node/20.10.0/x64", Origin: "toolcache"},
		},
		Tools: []snapshot.Tool{
			{Name: "git", Path: "/usr/bin/git", Version: "2.39.5", Status: "ok"},
			{Name: "php", Path: "/usr/bin/php", Version: "8.2.7", Status: "ok"},
		},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func python(v string, modules []snapshot.Module) snapshot.Runtime {
	return snapshot.Runtime{Kind: "python", Version: v, Path: "/opt/hostedtoolcache/Python/" + v + "/x64", Origin: "toolcache",
		Modules:  modules,
		Packages: []snapshot.RuntimePackage{{Name: "pip", Version: "23.0.1"}, {Name: "PyYAML", Version: "6.0.1"}}}
}

// mods builds a module list from name, status pairs.
func mods(kv ...string) []snapshot.Module {
	var out []snapshot.Module
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, snapshot.Module{Name: kv[i], Status: kv[i+1]})
	}
	return out
}

func runtimeAt(s *snapshot.Snapshot, kind, prefix string) *snapshot.Runtime {
	for i := range s.Runtimes {
		r := &s.Runtimes[i]
		if r.Kind == kind && len(r.Version) >= len(prefix) && r.Version[:len(prefix)] == prefix {
			return r
		}
	}
	panic("no runtime " + kind + " " + prefix)
}

func moduleOf(r *snapshot.Runtime, name string) *snapshot.Module {
	for i := range r.Modules {
		if r.Modules[i].Name == name {
			return &r.Modules[i]
		}
	}
	panic("no module " + name)
}

// incident is the 2019 image: sqlite3 stopped importing in 3.7 and 3.8
// moved to a new patch release.
func incident(s *snapshot.Snapshot) {
	py37 := runtimeAt(s, "python", "3.7")
	m := moduleOf(py37, "sqlite3")
	m.Status, m.Error = snapshot.StatusImportError, "No module named '_sqlite3'"
	*runtimeAt(s, "python", "3.8") = python("3.8.20", mods("sqlite3", "ok", "ssl", "ok"))
}

func TestCompareClasses(t *testing.T) {
	tests := []struct {
		name string
		new  func(s *snapshot.Snapshot)
		want []row
	}{
		{"unchanged", nil, []row{}},
		{"the incident", incident, []row{
			{"runtime/python@3.8", diff.ClassUpgraded, false, ""},
			{"runtime/python@3.7/module/sqlite3", diff.ClassBroken, true, "No module named '_sqlite3'"},
		}},
		{"os upgraded", func(s *snapshot.Snapshot) { s.OS.VersionID = "13" }, []row{{"os/debian", diff.ClassUpgraded, false, ""}}},
		{"os replaced", func(s *snapshot.Snapshot) { s.OS = snapshot.OS{ID: "ubuntu", VersionID: "24.04"} }, []row{
			{"os/debian", diff.ClassRemoved, true, ""}, {"os/ubuntu", diff.ClassAdded, false, ""},
		}},
		{"deb upgraded by security revision", func(s *snapshot.Snapshot) { s.Packages[0].Version = "3.40.1-2+deb12u2" }, []row{
			{"package/deb/libsqlite3-0:amd64", diff.ClassUpgraded, false, ""},
		}},
		{"deb tilde version is a downgrade", func(s *snapshot.Snapshot) { s.Packages[1].Version = "3.0.15-1~deb12u0" }, []row{
			{"package/deb/libssl3:amd64", diff.ClassDowngraded, true, ""},
		}},
		{"deb epoch wins", func(s *snapshot.Snapshot) { s.Packages[2].Version = "1:2023a-1" }, []row{
			{"package/deb/tzdata:all", diff.ClassUpgraded, false, ""},
		}},
		{"package removed and added", func(s *snapshot.Snapshot) {
			s.Packages = append(s.Packages[1:], snapshot.Package{Type: "deb", Name: "libsqlite3-0", Version: "3.40.1-2+deb12u1", Arch: "i386"})
		}, []row{
			{"package/deb/libsqlite3-0:amd64", diff.ClassRemoved, true, ""},
			{"package/deb/libsqlite3-0:i386", diff.ClassAdded, false, ""},
		}},
		{"python series replaced", func(s *snapshot.Snapshot) {
			*runtimeAt(s, "python", "3.7") = python("3.12.4", mods("sqlite3", "ok"))
		}, []row{
			{"runtime/python@3.12", diff.ClassAdded, false, ""},
			{"runtime/python@3.7", diff.ClassRemoved, true, ""},
		}},
		{"python patch downgrade", func(s *snapshot.Snapshot) {
			*runtimeAt(s, "python", "3.8") = python("3.8.17", mods("sqlite3", "ok", "ssl", "ok"))
		}, []row{{"runtime/python@3.8", diff.ClassDowngraded, true, ""}}},
		{"module removed, added, fixed, changed", func(s *snapshot.Snapshot) {
			r := runtimeAt(s, "python", "3.7")
			r.Modules = mods("json", "ok", "sqlite3", "ok", "tomllib", "ok")
			r8 := runtimeAt(s, "python", "3.8")
			r8.Modules = mods("sqlite3", "ok", "ssl", "broken")
			r8.Modules[1].MissingLibraries = []string{"libssl.so.3"}
		}, []row{
			{"runtime/python@3.7/module/ssl", diff.ClassRemoved, true, ""},
			{"runtime/python@3.7/module/tomllib", diff.ClassAdded, false, ""},
			{"runtime/python@3.8/module/ssl", diff.ClassBroken, true, ""},
		}},
		{"module statuses between failures", func(s *snapshot.Snapshot) {
			moduleOf(runtimeAt(s, "python", "3.7"), "ssl").Status = "crash"
		}, []row{{"runtime/python@3.7/module/ssl", diff.ClassBroken, true, ""}}},
		{"runtime packages, names compared as PEP 503 says", func(s *snapshot.Snapshot) {
			r := runtimeAt(s, "python", "3.7")
			r.Packages = []snapshot.RuntimePackage{{Name: "pip", Version: "24.0"}, {Name: "pyyaml", Version: "6.0.1"}, {Name: "Requests", Version: "2.31.0"}}
			runtimeAt(s, "python", "3.8").Packages = []snapshot.RuntimePackage{{Name: "pip", Version: "23.0"}, {Name: "PyYAML", Version: "6.0.1"}}
		}, []row{
			{"runtime/python@3.7/package/pip", diff.ClassUpgraded, false, ""},
			{"runtime/python@3.7/package/requests", diff.ClassAdded, false, ""},
			{"runtime/python@3.8/package/pip", diff.ClassDowngraded, true, ""},
		}},
		{"node minor update stays node@20", func(s *snapshot.Snapshot) {
			r := runtimeAt(s, "node", "20")
			r.Version, r.Path = "20.11.1", "/opt/hostedtoolcache/node/20.11.1/x64"
		}, []row{{"runtime/node@20", diff.ClassUpgraded, false, ""}}},
		{"tools", func(s *snapshot.Snapshot) {
			s.Tools = []snapshot.Tool{
				{Name: "git", Path: "/usr/bin/git", Version: "2.39.5", Status: "failed", Error: "git: error while loading shared libraries: libpcre2-8.so.0"},
				{Name: "jq", Path: "/usr/bin/jq", Version: "1.6", Status: "ok"},
			}
		}, []row{
			{"tool/git", diff.ClassBroken, true, "git: error while loading shared libraries: libpcre2-8.so.0"},
			{"tool/jq", diff.ClassAdded, false, ""},
			{"tool/php", diff.ClassRemoved, true, ""},
		}},
		{"tool version and fix", func(s *snapshot.Snapshot) {
			s.Tools[0].Version = "2.40.0"
		}, []row{{"tool/git", diff.ClassUpgraded, false, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := diff.Compare(snap(nil), snap(tt.new), nil)
			if d := cmp.Diff(tt.want, rows(r)); d != "" {
				t.Errorf("changes (-want +got):\n%s", d)
			}
			wantFail := false
			for _, w := range tt.want {
				wantFail = wantFail || w.Unexpected
			}
			if r.Failed() != wantFail {
				t.Errorf("Failed() = %v, want %v", r.Failed(), wantFail)
			}
		})
	}
}

func TestCompareFixedAndChanged(t *testing.T) {
	old := snap(func(s *snapshot.Snapshot) {
		r := runtimeAt(s, "python", "3.7")
		moduleOf(r, "sqlite3").Status = "broken"
		moduleOf(r, "ssl").Status = "broken"
		s.Tools[1].Status, s.Tools[1].Error = "failed", "php: not found"
	})
	new := snap(func(s *snapshot.Snapshot) {
		moduleOf(runtimeAt(s, "python", "3.7"), "ssl").Status = "import-error"
	})
	got := rows(diff.Compare(old, new, nil))
	want := []row{
		{"runtime/python@3.7/module/sqlite3", diff.ClassFixed, false, ""},
		{"runtime/python@3.7/module/ssl", diff.ClassChanged, false, ""},
		{"tool/php", diff.ClassFixed, false, ""},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
}

// Two installs of one series (a tool cache 3.7 and a pyenv 3.7) are told
// apart by their install roots with version parts masked, in the ID too,
// never crossed.
func TestCompareSameSeriesTwice(t *testing.T) {
	pyenv := func(v, status string) snapshot.Runtime {
		return snapshot.Runtime{Kind: "python", Version: v, Path: "/root/.pyenv/versions/" + v, Origin: "pyenv", Modules: mods("sqlite3", status)}
	}
	old := snap(func(s *snapshot.Snapshot) { s.Runtimes = append(s.Runtimes, pyenv("3.7.9", "ok")) })
	new := snap(func(s *snapshot.Snapshot) {
		s.Runtimes = append(s.Runtimes, pyenv("3.7.17", "broken"))
		r := runtimeAt(s, "python", "3.7")
		*r = python("3.7.17", r.Modules)
	})
	r := diff.Compare(old, new, nil)
	type pathRow struct{ ID, Class, Old, New string }
	var got []pathRow
	for _, c := range r.Changes {
		got = append(got, pathRow{c.ID, c.Class, c.Old.Path, c.New.Path})
	}
	want := []pathRow{
		{"runtime/python@3.7[/opt/hostedtoolcache/Python/*/x64]", diff.ClassUpgraded, "/opt/hostedtoolcache/Python/3.7.16/x64", "/opt/hostedtoolcache/Python/3.7.17/x64"},
		{"runtime/python@3.7[/root/.pyenv/versions/*]", diff.ClassUpgraded, "/root/.pyenv/versions/3.7.9", "/root/.pyenv/versions/3.7.17"},
		{"runtime/python@3.7[/root/.pyenv/versions/*]/module/sqlite3", diff.ClassBroken, "/root/.pyenv/versions/3.7.17", "/root/.pyenv/versions/3.7.17"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
}

// The hosted-image case: a tool-cache 3.11 and the system's 3.11 in one
// image. Each is compared with its own kind across an update of either,
// one added beside a lone install pairs the lone one by root, and a
// pattern with * still reaches every install's modules.
func TestCompareTwoInstallsOfOneSeries(t *testing.T) {
	rt := func(v, path, origin, sqlite string) snapshot.Runtime {
		return snapshot.Runtime{Kind: "python", Version: v, Path: path, Origin: origin, Modules: mods("sqlite3", sqlite)}
	}
	tc := func(v, sqlite string) snapshot.Runtime {
		return rt(v, "/opt/hostedtoolcache/Python/"+v+"/x64", "toolcache", sqlite)
	}
	system := rt("3.11.2", "/usr", "os-package", "ok")
	with := func(rts ...snapshot.Runtime) *snapshot.Snapshot {
		return &snapshot.Snapshot{Schema: snapshot.SchemaV1, Runtimes: rts}
	}
	type row struct{ ID, Class string }
	rows := func(r *diff.Report) []row {
		var out []row
		for _, c := range r.Changes {
			out = append(out, row{c.ID, c.Class})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		old, new *snapshot.Snapshot
		want     []row
	}{
		{"tool cache upgraded, sqlite3 broken", with(tc("3.11.7", "ok"), system), with(tc("3.11.8", "broken"), system), []row{
			{"runtime/python@3.11[/opt/hostedtoolcache/Python/*/x64]", diff.ClassUpgraded},
			{"runtime/python@3.11[/opt/hostedtoolcache/Python/*/x64]/module/sqlite3", diff.ClassBroken},
		}},
		{"system one added beside the tool cache", with(tc("3.11.7", "ok")), with(tc("3.11.7", "ok"), system), []row{
			{"runtime/python@3.11[/usr]", diff.ClassAdded},
		}},
		{"one per series keeps the plain ID", with(tc("3.11.7", "ok")), with(tc("3.11.8", "ok")), []row{
			{"runtime/python@3.11", diff.ClassUpgraded},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := diff.Compare(tc.old, tc.new, nil)
			if d := cmp.Diff(tc.want, rows(r)); d != "" {
				t.Errorf("changes (-want +got):\n%s", d)
			}
		})
	}
	ch, err := diff.ParseChanges("changes.yaml", []byte("changes:\n  - break: runtime/python@*/module/sqlite3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := diff.Compare(with(tc("3.11.7", "ok"), system), with(tc("3.11.8", "broken"), system), ch); r.Failed() {
		t.Errorf("runtime/python@*/module/sqlite3 does not cover %s", r.Changes[1].ID)
	}
}

func TestRuntimeIDs(t *testing.T) {
	rts := []snapshot.Runtime{
		{Kind: "python", Version: "3.11.7", Path: "/opt/hostedtoolcache/Python/3.11.7/x64"},
		{Kind: "python", Version: "3.11.2", Path: "/usr"},
		{Kind: "python", Version: "3.12.1", Path: "/usr/local"},
		{Kind: "node", Version: "20.10.0", Path: "/root/.nvm/versions/node/v20.10.0"},
		{Kind: "node", Version: "20.11.1", Path: "/root/.nvm/versions/node/v20.11.1"},
	}
	want := []string{
		"runtime/python@3.11[/opt/hostedtoolcache/Python/*/x64]",
		"runtime/python@3.11[/usr]",
		"runtime/python@3.12",
		// Masked alike: the full paths tell them apart.
		"runtime/node@20[/root/.nvm/versions/node/v20.10.0]",
		"runtime/node@20[/root/.nvm/versions/node/v20.11.1]",
	}
	if d := cmp.Diff(want, diff.RuntimeIDs(rts)); d != "" {
		t.Errorf("RuntimeIDs (-want +got):\n%s", d)
	}
}

func TestMaskVersions(t *testing.T) {
	for in, want := range map[string]string{
		"/opt/hostedtoolcache/Python/3.11.7/x64":   "/opt/hostedtoolcache/Python/*/x64",
		"/root/.nvm/versions/node/v20.10.0":        "/root/.nvm/versions/node/*",
		"/usr/share/dotnet/sdk/8.0.100":            "/usr/share/dotnet/sdk/*",
		"/root/.sdkman/candidates/java/17.0.9-tem": "/root/.sdkman/candidates/java/*-tem",
		"/usr/lib/jvm/17":                          "/usr/lib/jvm/*",
		"/usr/lib/jvm/java-17-openjdk-amd64":       "/usr/lib/jvm/java-17-openjdk-amd64",
		"/opt/python/3.13.0rc1":                    "/opt/python/*",
		"/usr":                                     "/usr",
	} {
		if got := diff.MaskVersions(in); got != want {
			t.Errorf("MaskVersions(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRuntimeID(t *testing.T) {
	tests := []struct{ kind, version, want string }{
		{"python", "3.7.16", "runtime/python@3.7"},
		{"python", "3.13.0rc1", "runtime/python@3.13"},
		{"go", "go1.22.3", "runtime/go@1.22"},
		{"go", "1.22.3", "runtime/go@1.22"},
		{"java", "17.0.15+6", "runtime/java@17"},
		{"java", "1.8.0_392", "runtime/java@8"},
		{"node", "20.11.1", "runtime/node@20"},
		{"node", "v18.20.4", "runtime/node@18"},
		{"dotnet-sdk", "8.0.404", "runtime/dotnet-sdk@8.0"},
		{"ruby", "3.3.5", "runtime/ruby@3.3"},
		{"python", "unknown", "runtime/python@unknown"},
	}
	for _, tt := range tests {
		if got := diff.RuntimeID(&snapshot.Runtime{Kind: tt.kind, Version: tt.version}); got != tt.want {
			t.Errorf("RuntimeID(%s %s) = %q, want %q", tt.kind, tt.version, got, tt.want)
		}
	}
}

func TestCompareLeavesUnsortedInputAlone(t *testing.T) {
	old := snap(nil)
	old.Packages[0], old.Packages[2] = old.Packages[2], old.Packages[0]
	first := old.Packages[0].Name
	new := snap(nil)
	if r := diff.Compare(old, new, nil); len(r.Changes) != 0 {
		t.Errorf("unsorted but equal snapshots differ: %+v", rows(r))
	}
	if old.Packages[0].Name != first {
		t.Errorf("Compare reordered its input")
	}
}

func TestDeclarations(t *testing.T) {
	tests := []struct {
		name       string
		changes    string
		fail       bool
		declared   []string // IDs covered
		staleLines []int
	}{
		{"none", ``, true, nil, nil},
		{"declared break", "changes:\n  - break: runtime/python@3.7/module/*\n    reason: dropping sqlite\n", false,
			[]string{"runtime/python@3.7/module/sqlite3"}, nil},
		{"wrong action does not cover", "changes:\n  - remove: runtime/python@3.7/module/sqlite3\n", true, nil, []int{2}},
		{"single star stays in its segment", "changes:\n  - break: runtime/*\n", true, nil, []int{2}},
		{"double star crosses segments", "changes:\n  - break: runtime/**\n", false, []string{"runtime/python@3.7/module/sqlite3"}, nil},
		{"upgrade declared too, stale remove", "changes:\n  - break: runtime/python@3.7/module/sqlite3\n  - upgrade: runtime/python@3.8\n  - remove: tool/php*\n", false,
			[]string{"runtime/python@3.8", "runtime/python@3.7/module/sqlite3"}, []int{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := diff.ParseChanges("changes.yaml", []byte(tt.changes))
			if err != nil {
				t.Fatal(err)
			}
			r := diff.Compare(snap(nil), snap(incident), ch)
			if r.Failed() != tt.fail {
				t.Errorf("Failed() = %v, want %v", r.Failed(), tt.fail)
			}
			var declared []string
			for _, c := range r.Changes {
				if c.Declared != nil {
					declared = append(declared, c.ID)
				}
			}
			if d := cmp.Diff(tt.declared, declared); d != "" {
				t.Errorf("declared (-want +got):\n%s", d)
			}
			var stale []int
			for _, d := range r.Stale {
				stale = append(stale, d.Line)
			}
			if d := cmp.Diff(tt.staleLines, stale); d != "" {
				t.Errorf("stale lines (-want +got):\n%s", d)
			}
			if len(r.Warnings) != len(tt.staleLines) {
				t.Errorf("warnings = %q, want one per stale declaration", r.Warnings)
			}
		})
	}
}

func TestDeclarationCovers(t *testing.T) {
	tests := []struct {
		pattern, id string
		want        bool
	}{
		{"tool/php*", "tool/php", true},
		{"tool/php*", "tool/php8.2", true},
		{"tool/php*", "tool/phar", false},
		{"package/deb/libssl*", "package/deb/libssl3:amd64", true},
		{"package/deb/libssl3", "package/deb/libssl3:amd64", true},
		{"package/deb/libssl3:i386", "package/deb/libssl3:amd64", false},
		{"runtime/python@2.7/module/*", "runtime/python@2.7/module/sqlite3", true},
		{"runtime/python@2.7/module/*", "runtime/python@2.7", false},
		{"runtime/python@3.7", "runtime/python@3.7", true},
		{"runtime/python@3.?/package/pip", "runtime/python@3.7/package/pip", true},
		{"runtime/python@3.?/package/pip", "runtime/python@3.10/package/pip", false},
		{"runtime/**/sqlite3", "runtime/python@3.7/module/sqlite3", true},
		{"*/*", "tool/git", true},
	}
	for _, tt := range tests {
		d := diff.Declaration{Action: "remove", Pattern: tt.pattern}
		if got := d.Covers(diff.ClassRemoved, tt.id); got != tt.want {
			t.Errorf("%q covers %q = %v, want %v", tt.pattern, tt.id, got, tt.want)
		}
		if d.Covers(diff.ClassAdded, tt.id) {
			t.Errorf("remove %q covers an addition", tt.pattern)
		}
	}
}

func TestExecWarning(t *testing.T) {
	new := snap(func(s *snapshot.Snapshot) { s.Exec = "none" })
	r := diff.Compare(snap(nil), new, nil)
	want := []string{"old was scanned with --exec local and new with --exec none: module and tool statuses rest on different evidence"}
	if d := cmp.Diff(want, r.Warnings); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

// TestCompareFoldsCauseIntoSymptom: a real scan of the incident reports the
// private extension too (_sqlite3 missing or failing). The gate must still
// fail with one unexpected entry, the module users import, while the
// cause stays listed, linked to it.
func TestCompareFoldsCauseIntoSymptom(t *testing.T) {
	withExt := func(s *snapshot.Snapshot) {
		for _, v := range []string{"3.7", "3.8"} {
			r := runtimeAt(s, "python", v)
			r.Modules = append(r.Modules, snapshot.Module{Name: "_sqlite3", Status: "ok"}, snapshot.Module{Name: "_ssl", Status: "ok"}, snapshot.Module{Name: "_json", Status: "ok"})
		}
	}
	tests := []struct {
		name           string
		new            func(s *snapshot.Snapshot)
		wantUnexpected []string
		wantPartOf     map[string]string
	}{
		{"extension missing, named by the import error", func(s *snapshot.Snapshot) {
			withExt(s)
			incident(s)
			r := runtimeAt(s, "python", "3.7")
			r.Modules = slicesDelete(r.Modules, "_sqlite3")
			withExtOnly(runtimeAt(s, "python", "3.8"))
		}, []string{"runtime/python@3.7/module/sqlite3"}, map[string]string{"runtime/python@3.7/module/_sqlite3": "runtime/python@3.7/module/sqlite3"}},
		{"extension and package broken by a missing library", func(s *snapshot.Snapshot) {
			withExt(s)
			r := runtimeAt(s, "python", "3.7")
			for _, n := range []string{"ssl", "_ssl"} {
				m := moduleOf(r, n)
				m.Status, m.Error, m.MissingLibraries = snapshot.StatusBroken, "libssl.so.3: cannot open shared object file: No such file or directory", []string{"libssl.so.3"}
			}
		}, []string{"runtime/python@3.7/module/ssl"}, map[string]string{"runtime/python@3.7/module/_ssl": "runtime/python@3.7/module/ssl"}},
		{"an extension broken on its own still fails", func(s *snapshot.Snapshot) {
			withExt(s)
			moduleOf(runtimeAt(s, "python", "3.7"), "_json").Status = snapshot.StatusImportError
		}, []string{"runtime/python@3.7/module/_json"}, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := diff.Compare(snap(withExt), snap(tc.new), nil)
			unexpected := []string{}
			partOf := map[string]string{}
			for _, c := range r.Changes {
				if c.Unexpected {
					unexpected = append(unexpected, c.ID)
				}
				if c.PartOf != "" {
					partOf[c.ID] = c.PartOf
				}
			}
			if diff := cmp.Diff(tc.wantUnexpected, unexpected); diff != "" {
				t.Errorf("unexpected entries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantPartOf, partOf); diff != "" {
				t.Errorf("partOf (-want +got):\n%s", diff)
			}
			if !r.Failed() {
				t.Error("gate passes; want it to fail")
			}
		})
	}
}

func slicesDelete(ms []snapshot.Module, name string) []snapshot.Module {
	out := ms[:0:0]
	for _, m := range ms {
		if m.Name != name {
			out = append(out, m)
		}
	}
	return out
}

// withExtOnly gives a replaced runtime the same extensions as before.
func withExtOnly(r *snapshot.Runtime) {
	r.Modules = append(r.Modules, snapshot.Module{Name: "_sqlite3", Status: "ok"}, snapshot.Module{Name: "_ssl", Status: "ok"}, snapshot.Module{Name: "_json", Status: "ok"})
}
