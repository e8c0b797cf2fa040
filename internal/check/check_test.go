package check_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/cpython"
	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// pythonRuntime is a runtime whose every expected stdlib module is ok,
// then changed by the given module entries (a status of "" drops the
// module from the snapshot entirely, as an older scan might have).
func pythonRuntime(t testing.TB, version, path, origin string, changed ...snapshot.Module) snapshot.Runtime {
	t.Helper()
	mm := version[:len("3.x")]
	if version[3] != '.' {
		mm = version[:4]
	}
	expected, ok := cpython.ExpectedModules(mm)
	if !ok {
		t.Fatalf("no expected module list for %s", mm)
	}
	byName := map[string]snapshot.Module{}
	for _, m := range changed {
		byName[m.Name] = m
	}
	rt := snapshot.Runtime{Kind: "python", Version: version, Path: path, Origin: origin, Executable: path + "/bin/python" + mm}
	for _, name := range expected {
		m, ok := byName[name]
		switch {
		case !ok:
			rt.Modules = append(rt.Modules, snapshot.Module{Name: name, Status: snapshot.StatusOK})
		case m.Status != "":
			rt.Modules = append(rt.Modules, m)
		}
		delete(byName, name)
	}
	for _, m := range byName { // not in the expected list (platform-only, extras)
		rt.Modules = append(rt.Modules, m)
	}
	return rt
}

func snap(rts []snapshot.Runtime, tools ...snapshot.Tool) *snapshot.Snapshot {
	s := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/image", Exec: "local", Runtimes: rts, Tools: tools}
	s.Normalize()
	return s
}

func mustChanges(t testing.TB, yaml string) *diff.Changes {
	t.Helper()
	ch, err := diff.ParseChanges("changes.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// line is a result as the tests compare it.
func lines(r *check.Report, statuses ...string) []string {
	var out []string
	for _, res := range r.Results {
		for _, s := range statuses {
			if res.Status == s {
				out = append(out, fmt.Sprintf("%s %s: %s", res.Status, res.ID, res.Message))
			}
		}
	}
	return out
}

const (
	toolcache37 = "/opt/hostedtoolcache/Python/3.7.16/x64"
	noSqlite    = "No module named '_sqlite3'"
)

func TestAutomatic(t *testing.T) {
	debianOptional := []snapshot.Module{
		{Name: "tkinter", Status: snapshot.StatusMissing},
		{Name: "_tkinter", Status: snapshot.StatusMissing},
		{Name: "_gdbm", Status: snapshot.StatusMissing},
		{Name: "idlelib", Status: snapshot.StatusMissing},
		{Name: "turtledemo", Status: snapshot.StatusMissing},
	}
	incident := []snapshot.Module{
		{Name: "sqlite3", Status: snapshot.StatusImportError, Kind: "package", Error: noSqlite},
		{Name: "_sqlite3", Status: snapshot.StatusMissing},
	}
	tests := []struct {
		name    string
		snap    *snapshot.Snapshot
		changes string
		// want are the failed, declared and info results.
		want   []string
		failed bool
	}{
		{
			name:   "the 2019 incident fails with one line",
			snap:   snap([]snapshot.Runtime{pythonRuntime(t, "3.7.16", toolcache37, "toolcache", incident...)}),
			want:   []string{"fail runtime/python@3.7/module/sqlite3: import-error: " + noSqlite},
			failed: true,
		},
		{
			name: "the incident declared in a changes file passes",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.7.16", toolcache37, "toolcache", incident...)}),
			changes: `changes:
  - break: runtime/python@3.7/module/sqlite3
    reason: sqlite3 leaves the 3.7 toolcache build
`,
			want: []string{"declared runtime/python@3.7/module/sqlite3: import-error: " + noSqlite},
		},
		{
			name: "the incident found statically, sqlite3 files present but _sqlite3 absent",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.7.16", toolcache37, "toolcache",
				snapshot.Module{Name: "sqlite3", Status: snapshot.StatusBroken, Error: noSqlite},
				snapshot.Module{Name: "_sqlite3", Status: ""})}),
			want:   []string{"fail runtime/python@3.7/module/sqlite3: broken: " + noSqlite},
			failed: true,
		},
		{
			name: "Debian's own python without its optional packages passes",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.11.2", "/usr", "os-package", debianOptional...)}),
			want: []string{"info runtime/python@3.11/modules/not-installed: not installed (the distribution ships them in optional packages): _gdbm, _tkinter, idlelib, tkinter, turtledemo"},
		},
		{
			name: "Debian's python that no longer lists them at all passes too",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.11.2", "/usr", "os-package",
				snapshot.Module{Name: "tkinter"}, snapshot.Module{Name: "idlelib"})}),
			want: []string{"info runtime/python@3.11/modules/not-installed: not installed (the distribution ships them in optional packages): idlelib, tkinter"},
		},
		{
			name: "Debian's turtle needs tkinter from python3-tk: not installed, not broken",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.11.2", "/usr", "os-package",
				snapshot.Module{Name: "tkinter", Status: snapshot.StatusMissing},
				snapshot.Module{Name: "_tkinter", Status: snapshot.StatusMissing},
				snapshot.Module{Name: "turtle", Status: snapshot.StatusBroken, Error: "No module named 'tkinter'"})}),
			want: []string{"info runtime/python@3.11/modules/not-installed: not installed (the distribution ships them in optional packages): _tkinter, tkinter, turtle (needs tkinter)"},
		},
		{
			name: "but the same in a toolcache build fails once, with its cause",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.11.9", "/opt/hostedtoolcache/Python/3.11.9/x64", "toolcache",
				snapshot.Module{Name: "tkinter", Status: snapshot.StatusBroken, Error: "No module named '_tkinter'"},
				snapshot.Module{Name: "_tkinter", Status: snapshot.StatusMissing},
				snapshot.Module{Name: "turtle", Status: snapshot.StatusBroken, Error: "No module named 'tkinter'"})}),
			want: []string{
				"fail runtime/python@3.11/module/tkinter: broken: No module named '_tkinter'",
				"fail runtime/python@3.11/module/turtle: broken: No module named 'tkinter'",
			},
			failed: true,
		},
		{
			name: "the same modules missing from a toolcache build fail",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.11.9", "/opt/hostedtoolcache/Python/3.11.9/x64", "toolcache", debianOptional...)}),
			want: []string{
				"fail runtime/python@3.11/module/_gdbm: missing: not shipped by this build",
				"fail runtime/python@3.11/module/_tkinter: missing: not shipped by this build",
				"fail runtime/python@3.11/module/idlelib: missing: not shipped by this build",
				"fail runtime/python@3.11/module/tkinter: missing: not shipped by this build",
				"fail runtime/python@3.11/module/turtledemo: missing: not shipped by this build",
			},
			failed: true,
		},
		{
			name: "Debian 13's _distutils_system_mod needs distutils, from python3-setuptools: a note",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.13.5", "/usr", "os-package",
				snapshot.Module{Name: "_distutils_system_mod", Status: snapshot.StatusImportError, Error: "No module named 'distutils'"})}),
			want: []string{"info runtime/python@3.13/modules/not-installed: not installed (the distribution ships them in optional packages): _distutils_system_mod (needs distutils)"},
		},
		{
			name: "the same module of a source-built python still fails",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.13.5", "/usr/local", "source",
				snapshot.Module{Name: "_distutils_system_mod", Status: snapshot.StatusImportError, Error: "No module named 'distutils'"})}),
			want:   []string{"fail runtime/python@3.13/module/_distutils_system_mod: import-error: No module named 'distutils'"},
			failed: true,
		},
		{
			name: "a distribution's module needing one no optional package ships fails",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.13.5", "/usr", "os-package",
				snapshot.Module{Name: "_distutils_system_mod", Status: snapshot.StatusImportError, Error: "No module named 'nosuchthing'"})}),
			want:   []string{"fail runtime/python@3.13/module/_distutils_system_mod: import-error: No module named 'nosuchthing'"},
			failed: true,
		},
		{
			name: "a distribution's python whose module does not import fails",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.11.2", "/usr", "os-package",
				snapshot.Module{Name: "sqlite3", Status: snapshot.StatusImportError, Error: noSqlite})}),
			want:   []string{"fail runtime/python@3.11/module/sqlite3: import-error: " + noSqlite},
			failed: true,
		},
		{
			name: "Python 2 words it without quotes",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "2.7.18", "/root/.pyenv/versions/2.7.18", "pyenv",
				snapshot.Module{Name: "_bsddb", Status: snapshot.StatusMissing, Error: "No module named _bsddb"},
				snapshot.Module{Name: "bsddb", Status: snapshot.StatusImportError, Error: "No module named _bsddb"},
				snapshot.Module{Name: "gdbm", Status: snapshot.StatusImportError, Error: "No module named gdbm"})}),
			want: []string{
				"fail runtime/python@2.7/module/bsddb: import-error: No module named _bsddb",
				"fail runtime/python@2.7/module/gdbm: missing: No module named gdbm",
			},
			failed: true,
		},
		{
			name:   "an older snapshot that lacks ssl entirely is caught by the expected list",
			snap:   snap([]snapshot.Runtime{pythonRuntime(t, "3.7.16", toolcache37, "pyenv", snapshot.Module{Name: "ssl"})}),
			want:   []string{"fail runtime/python@3.7/module/ssl: missing: not in the snapshot, though CPython 3.7 ships it on Linux"},
			failed: true,
		},
		{
			name: "an extension whose shared library is gone names it",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.7.16", toolcache37, "toolcache",
				snapshot.Module{Name: "_sqlite3", Status: snapshot.StatusBroken, Kind: "extension",
					MissingLibraries: []string{"libsqlite3.so.0"}, Error: "libsqlite3.so.0: cannot open shared object file: No such file or directory"})}),
			want:   []string{"fail runtime/python@3.7/module/_sqlite3: broken: missing shared library libsqlite3.so.0"},
			failed: true,
		},
		{
			name: "crash and timeout fail, platform-only modules are ignored",
			snap: snap([]snapshot.Runtime{pythonRuntime(t, "3.7.16", toolcache37, "toolcache",
				snapshot.Module{Name: "ssl", Status: snapshot.StatusCrash, Error: "segmentation fault"},
				snapshot.Module{Name: "os", Status: snapshot.StatusTimeout, Error: "no answer within 10s"},
				snapshot.Module{Name: "winreg", Status: snapshot.StatusImportError, Error: "No module named 'winreg'"},
				snapshot.Module{Name: "msvcrt", Status: snapshot.StatusMissing})}),
			want: []string{
				"fail runtime/python@3.7/module/os: timeout: no answer within 10s",
				"fail runtime/python@3.7/module/ssl: crash: segmentation fault",
			},
			failed: true,
		},
		{
			name: "two builds of one version are told apart by path",
			snap: snap([]snapshot.Runtime{
				pythonRuntime(t, "3.7.16", toolcache37, "toolcache"),
				pythonRuntime(t, "3.7.17", "/root/.pyenv/versions/3.7.17", "pyenv", incident...),
			}),
			want:   []string{"fail runtime/python@3.7[/root/.pyenv/versions/*]/module/sqlite3: import-error: " + noSqlite},
			failed: true,
		},
		{
			name: "tools that do not answer their version probe fail",
			snap: snap(nil,
				snapshot.Tool{Name: "git", Path: "/usr/bin/git", Version: "2.39.5", Status: "ok"},
				snapshot.Tool{Name: "kubectl", Path: "/usr/local/bin/kubectl", Status: "failed", Error: "exit status 127: /lib/ld-musl-x86_64.so.1: not found"},
				snapshot.Tool{Name: "gradle", Path: "/usr/bin/gradle", Status: "timeout", Error: "no answer within 5s"},
				snapshot.Tool{Name: "ls", Path: "/usr/bin/ls"}),
			want: []string{
				"fail tool/gradle: version probe timeout: no answer within 5s",
				"fail tool/kubectl: version probe failed: exit status 127: /lib/ld-musl-x86_64.so.1: not found",
			},
			failed: true,
		},
		{
			name: "a healthy image passes",
			snap: snap([]snapshot.Runtime{
				pythonRuntime(t, "3.7.16", toolcache37, "toolcache"),
				{Kind: "node", Version: "20.11.1", Path: "/usr/local"},
			}, snapshot.Tool{Name: "git", Path: "/usr/bin/git", Version: "2.39.5", Status: "ok"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts check.Options
			if tt.changes != "" {
				opts.Changes = mustChanges(t, tt.changes)
			}
			r, err := check.Run(context.Background(), tt.snap, opts)
			if err != nil {
				t.Fatal(err)
			}
			got := lines(r, check.StatusFail, check.StatusDeclared, check.StatusInfo)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if r.Failed() != tt.failed || (r.Verdict == "fail") != tt.failed {
				t.Errorf("Failed() = %v, verdict %q; want failed %v", r.Failed(), r.Verdict, tt.failed)
			}
		})
	}
}

func TestAutomaticPassedSummary(t *testing.T) {
	rt := pythonRuntime(t, "3.7.16", toolcache37, "toolcache")
	r, err := check.Run(context.Background(), snap([]snapshot.Runtime{rt},
		snapshot.Tool{Name: "git", Path: "/usr/bin/git", Status: "ok"},
		snapshot.Tool{Name: "jq", Path: "/usr/bin/jq", Status: "failed", Error: "exit status 1"}), check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, m := range rt.Modules {
		if !cpython.PlatformOnly(m.Name) {
			ok++
		}
	}
	want := []string{
		fmt.Sprintf("pass runtime/python@3.7/modules: %d standard-library modules ok at %s", ok, toolcache37),
		"pass tool: 1 of 2 probed tools answered",
	}
	if diff := cmp.Diff(want, lines(r, check.StatusPass)); diff != "" {
		t.Errorf("passed results (-want +got):\n%s", diff)
	}
	if r.Summary != (check.Summary{Failed: 1, Passed: 2}) {
		t.Errorf("summary %+v", r.Summary)
	}
}

func TestBaseline(t *testing.T) {
	old := snap([]snapshot.Runtime{
		pythonRuntime(t, "3.7.16", toolcache37, "toolcache"),
		pythonRuntime(t, "3.8.18", "/opt/hostedtoolcache/Python/3.8.18/x64", "toolcache"),
	})
	cur := snap([]snapshot.Runtime{
		pythonRuntime(t, "3.7.16", toolcache37, "toolcache",
			snapshot.Module{Name: "sqlite3", Status: snapshot.StatusImportError, Error: noSqlite}),
		pythonRuntime(t, "3.8.20", "/opt/hostedtoolcache/Python/3.8.20/x64", "toolcache"),
	})
	tests := []struct {
		name    string
		changes string
		want    []string
		// evidence is the failed or declared result's evidence.
		evidence []string
		note     string
		failed   bool
	}{
		{
			name: "the broken module fails once, the baseline change as its evidence",
			want: []string{
				"fail runtime/python@3.7/module/sqlite3: import-error: " + noSqlite,
			},
			evidence: []string{"baseline: broken: ok → import-error: " + noSqlite},
			note:     "baseline: 1 unexpected change since dir:/image",
			failed:   true,
		},
		{
			name:    "declared, both pass",
			changes: "changes:\n  - break: runtime/python@3.7/module/sqlite3\n    reason: going away\n  - remove: tool/php\n",
			want: []string{
				"declared runtime/python@3.7/module/sqlite3: import-error: " + noSqlite,
			},
			evidence: []string{"baseline: broken: ok → import-error: " + noSqlite + " (declared: going away)"},
			// diff words the warning about the stale declaration; check
			// passes it on.
			note: "baseline/warning: changes.yaml:4:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := check.Options{Baseline: old}
			if tt.changes != "" {
				opts.Changes = mustChanges(t, tt.changes)
			}
			r, err := check.Run(context.Background(), cur, opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, lines(r, check.StatusFail, check.StatusDeclared)); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.evidence, r.Results[0].Evidence); diff != "" {
				t.Errorf("evidence of %s (-want +got):\n%s", r.Results[0].ID, diff)
			}
			notes := lines(r, check.StatusInfo)
			if !slices.ContainsFunc(notes, func(s string) bool { return strings.HasPrefix(s, "info "+tt.note) }) {
				t.Errorf("no note starting %q in %q", tt.note, notes)
			}
			if r.Failed() != tt.failed || r.Baseline == nil || r.Baseline.Failed() != tt.failed {
				t.Errorf("Failed() = %v, baseline %v; want %v", r.Failed(), r.Baseline, tt.failed)
			}
			// Every format but JUnit carries the embedded diff; JUnit has
			// one test case for the one cause.
			for _, format := range []string{"table", "markdown", "junit", "json"} {
				var b strings.Builder
				if err := r.Write(&b, format); err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				n := strings.Count(b.String(), "python@3.7/module/sqlite3")
				switch {
				case format == "junit" && n != 1:
					t.Errorf("junit names the module %d times, want one test case", n)
				case format != "junit" && n < 2:
					t.Errorf("%s names the module %d times, want the check's result and the diff's", format, n)
				}
			}
		})
	}
}

// TestBaselineOneCause is the incident against a baseline: _sqlite3 went
// missing, which broke sqlite3. Automatic evidence and the baseline diff
// both see it; the report lists it once, every change as evidence.
func TestBaselineOneCause(t *testing.T) {
	old := snap([]snapshot.Runtime{pythonRuntime(t, "3.7.16", toolcache37, "toolcache")})
	cur := snap([]snapshot.Runtime{pythonRuntime(t, "3.7.16", toolcache37, "toolcache",
		snapshot.Module{Name: "sqlite3", Status: snapshot.StatusImportError, Kind: "package", Error: noSqlite},
		snapshot.Module{Name: "_sqlite3", Status: snapshot.StatusMissing})})
	r, err := check.Run(context.Background(), cur, check.Options{Baseline: old})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fail runtime/python@3.7/module/sqlite3: import-error: " + noSqlite}
	if diff := cmp.Diff(want, lines(r, check.StatusFail, check.StatusDeclared)); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	ev := r.Results[0].Evidence
	wantEv := []string{
		"cause: _sqlite3 missing: not shipped by this build",
		"baseline: broken: ok → import-error: " + noSqlite,
	}
	if diff := cmp.Diff(wantEv, ev); diff != "" {
		t.Errorf("evidence (-want +got):\n%s", diff)
	}
	// diff itself counts _sqlite3 as sqlite3's consequence, not as a
	// second unexpected change; the embedded report keeps both entries.
	if r.Baseline.Summary.Unexpected != 1 || len(r.Baseline.Changes) != 2 {
		t.Errorf("embedded diff: %d unexpected of %d changes, want 1 of 2", r.Baseline.Summary.Unexpected, len(r.Baseline.Changes))
	}
}
