package analysis_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/analysis"
	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// image is a small image with the tool cache's Python 3.7 and 3.8.
func image(mod func(s *snapshot.Snapshot)) *snapshot.Snapshot {
	py := func(v string) snapshot.Runtime {
		return snapshot.Runtime{Kind: "python", Version: v, Path: "/opt/hostedtoolcache/Python/" + v + "/x64", Origin: "toolcache",
			Modules: []snapshot.Module{
				{Name: "_sqlite3", Status: snapshot.StatusOK, Kind: "extension"},
				{Name: "_ssl", Status: snapshot.StatusOK, Kind: "extension"},
				{Name: "json", Status: snapshot.StatusOK, Kind: "pure"},
				{Name: "sqlite3", Status: snapshot.StatusOK, Kind: "pure"},
				{Name: "ssl", Status: snapshot.StatusOK, Kind: "pure"},
			}}
	}
	s := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/image", Exec: "local",
		ScannedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		OS:        snapshot.OS{ID: "debian", VersionID: "12"},
		Packages: []snapshot.Package{
			{Type: "deb", Name: "libsqlite3-0", Version: "3.40.1-2+deb12u1", Arch: "amd64"},
			{Type: "deb", Name: "libssl3", Version: "3.0.15-1~deb12u1", Arch: "amd64"},
			{Type: "deb", Name: "sqlite3", Version: "3.40.1-2+deb12u1", Arch: "amd64"},
		},
		Runtimes: []snapshot.Runtime{py("3.7.16"), py("3.8.18")},
		Tools:    []snapshot.Tool{{Name: "git", Path: "/usr/bin/git", Version: "2.39.5", Status: snapshot.StatusOK}},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func module(s *snapshot.Snapshot, series, name string) *snapshot.Module {
	for i := range s.Runtimes {
		if strings.HasPrefix(s.Runtimes[i].Version, series+".") {
			for j := range s.Runtimes[i].Modules {
				if s.Runtimes[i].Modules[j].Name == name {
					return &s.Runtimes[i].Modules[j]
				}
			}
		}
	}
	panic("no module " + name)
}

type rank struct {
	ID      string
	Failing bool
}

func ranks(cs []analysis.Cause) []rank {
	out := []rank{}
	for _, c := range cs {
		out = append(out, rank{c.Change.ID, c.Failing})
	}
	return out
}

func TestProbableCause(t *testing.T) {
	tests := []struct {
		name     string
		new      func(s *snapshot.Snapshot)
		template string
		examples []string
		want     []rank
	}{
		{
			name: "the 2019 image: _sqlite3 left out of the tool cache's 3.7",
			new: func(s *snapshot.Snapshot) {
				r := &s.Runtimes[0]
				r.Modules = slices.DeleteFunc(r.Modules, func(m snapshot.Module) bool { return m.Name == "_sqlite3" })
				m := module(s, "3.7", "sqlite3")
				m.Status, m.Error = snapshot.StatusImportError, "No module named '_sqlite3'"
				s.Packages[1].Version = "3.0.15-1~deb12u2" // an unrelated upgrade
				s.Tools[0].Version = "2.39.6"
			},
			template: "ModuleNotFoundError: No module named '_sqlite3'",
			examples: []string{
				`File "/opt/hostedtoolcache/Python/3.7.16/x64/lib/python3.7/sqlite3/dbapi2.py", line 27, in <module>
    from _sqlite3 import *
ModuleNotFoundError: No module named '_sqlite3'`,
			},
			want: []rank{
				{"runtime/python@3.7/module/sqlite3", true},
				{"runtime/python@3.7/module/_sqlite3", true},
			},
		},
		{
			name: "libsqlite3-0 removed from the image",
			new: func(s *snapshot.Snapshot) {
				s.Packages = slices.DeleteFunc(s.Packages, func(p snapshot.Package) bool { return p.Name == "libsqlite3-0" })
				for _, series := range []string{"3.7", "3.8"} {
					m := module(s, series, "_sqlite3")
					m.Status, m.MissingLibraries = snapshot.StatusBroken, []string{"libsqlite3.so.0"}
					m.Error = "libsqlite3.so.0: cannot open shared object file: No such file or directory"
				}
				s.Packages[0].Version = "3.0.15-1~deb12u0" // libssl3 downgraded: failing, but unrelated
			},
			template: "ImportError: libsqlite3.so.0: cannot open shared object file: No such file or directory",
			want: []rank{
				{"package/deb/libsqlite3-0:amd64", true},
				{"runtime/python@3.7/module/_sqlite3", true},
				{"runtime/python@3.8/module/_sqlite3", true},
			},
		},
		{
			name:     "nothing in the diff matches",
			new:      func(s *snapshot.Snapshot) { s.Tools[0].Version = "2.39.6" },
			template: "Error: Process completed with exit code <*>",
			want:     []rank{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := diff.Compare(image(nil), image(tt.new), nil)
			got := analysis.ProbableCause(tt.template, tt.examples, r.Changes, 3)
			for _, c := range got {
				t.Logf("%d %s", c.Score, c.Why)
			}
			if d := cmp.Diff(tt.want, ranks(got)); d != "" {
				t.Errorf("causes (-want +got):\n%s\nfrom changes %v", d, r.Changes)
			}
			for _, c := range got {
				if c.Score <= 0 || c.Why == "" {
					t.Errorf("%s: score %d, why %q", c.Change.ID, c.Score, c.Why)
				}
			}
		})
	}
}

// An upgrade that matches ranks after a failing change that matches, and
// the limit keeps the best.
func TestProbableCauseFailingFirst(t *testing.T) {
	changes := []diff.Change{
		{ID: "package/deb/libsqlite3-0:amd64", Section: diff.SectionPackages, Class: diff.ClassUpgraded},
		{ID: "runtime/python@3.7/module/sqlite3", Section: diff.SectionModules, Class: diff.ClassBroken, Unexpected: true,
			Evidence: "No module named '_sqlite3'"},
		{ID: "package/deb/tzdata:all", Section: diff.SectionPackages, Class: diff.ClassRemoved, Unexpected: true},
	}
	got := analysis.ProbableCause("sqlite3.OperationalError: no such table: <*>", nil, changes, 0)
	want := []rank{{"runtime/python@3.7/module/sqlite3", true}, {"package/deb/libsqlite3-0:amd64", false}}
	if d := cmp.Diff(want, ranks(got)); d != "" {
		t.Errorf("causes (-want +got):\n%s", d)
	}
	if got := analysis.ProbableCause("sqlite3.OperationalError", nil, changes, 1); len(got) != 1 {
		t.Errorf("limit 1 gave %d causes", len(got))
	}
}
