package cpython_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/cpython"
)

func TestModuleNotFound(t *testing.T) {
	for _, tc := range []struct {
		name string
		py2  bool
		want string
	}{
		{"_sqlite3", false, "No module named '_sqlite3'"},
		{"xml.parsers.expat", false, "No module named 'xml.parsers.expat'"},
		{"_bsddb", true, "No module named _bsddb"},
		{"xml.parsers.expat", true, "No module named expat"},
	} {
		if got := cpython.ModuleNotFound(tc.name, tc.py2); got != tc.want {
			t.Errorf("ModuleNotFound(%q, py2=%v) = %q, want %q", tc.name, tc.py2, got, tc.want)
		}
	}
}

// TestReadingImportErrors: the three questions asked of an interpreter's
// import error, each with its own strictness (see their comments).
func TestReadingImportErrors(t *testing.T) {
	for _, tc := range []struct {
		text, module                      string
		isNotFound, reportsMissing, names bool
	}{
		{"No module named '_sqlite3'", "_sqlite3", true, true, true},
		{"No module named _bsddb", "_bsddb", true, true, true},
		{"Traceback\nImportError: No module named '_tkinter'", "_tkinter", false, true, true},
		{"ImportError: No module named gdbm\nmore", "gdbm", false, true, false},
		{"No module named tkinter", "tk", false, false, false},
		{"No module named '_tkinter'", "tkinter", false, false, false},
		{"cannot import name '_ssl' from partially initialized module", "_ssl", false, false, true},
		{"libsqlite3.so.0: cannot open shared object file", "sqlite3", false, false, false},
	} {
		if got := cpython.IsModuleNotFound(tc.text, tc.module); got != tc.isNotFound {
			t.Errorf("IsModuleNotFound(%q, %q) = %v", tc.text, tc.module, got)
		}
		if got := cpython.ReportsMissing(tc.text, tc.module); got != tc.reportsMissing {
			t.Errorf("ReportsMissing(%q, %q) = %v", tc.text, tc.module, got)
		}
		if got := cpython.NamesModule(tc.text, tc.module); got != tc.names {
			t.Errorf("NamesModule(%q, %q) = %v", tc.text, tc.module, got)
		}
	}
}

func TestPlatformOnlyModules(t *testing.T) {
	mods := cpython.PlatformOnlyModules()
	if len(mods) < 20 {
		t.Fatalf("%d platform-only modules: %v", len(mods), mods)
	}
	for i, m := range mods {
		if !cpython.PlatformOnly(m) {
			t.Errorf("PlatformOnly(%s) = false, though listed", m)
		}
		if i > 0 && mods[i-1] >= m {
			t.Errorf("not sorted at %s", m)
		}
	}
}
