package python_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/python"
	"github.com/imagegate/imagegate/internal/testenv"
)

func TestTopLevelImports(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []python.Import
	}{
		{"plain", "import os\nimport a.b as c, d\n",
			[]python.Import{{Module: "os"}, {Module: "a.b"}, {Module: "d"}}},
		{"from", "from sqlite3.dbapi2 import *\nfrom _sqlite3 import connect as c, Row\n",
			[]python.Import{{Module: "sqlite3.dbapi2", From: true}, {Module: "_sqlite3", Names: []string{"connect", "Row"}, From: true}}},
		{"relative", "from . import a\nfrom ..x import (\n    b,\n    c,\n)\n",
			[]python.Import{{Level: 1, Names: []string{"a"}, From: true}, {Module: "x", Level: 2, Names: []string{"b", "c"}, From: true}}},
		{"indented is conditional", "try:\n    import _ssl\nexcept ImportError:\n    pass\nif x:\n    from y import z\ndef f():\n    import q\n",
			nil},
		{"docstring", "\"\"\"Docs.\n\nimport notreal\nfrom x import y\n\"\"\"\nimport real\n",
			[]python.Import{{Module: "real"}}},
		{"single-quoted triple with quotes inside", "x = '''a ' b\nimport no\n'''\nimport yes\n",
			[]python.Import{{Module: "yes"}}},
		{"escaped quote", "s = \"\\\"\"\nimport after\n",
			[]python.Import{{Module: "after"}}},
		{"comment", "# import no\nimport yes  # import no2\n",
			[]python.Import{{Module: "yes"}}},
		{"continuation", "import a, \\\n    b\n",
			[]python.Import{{Module: "a"}, {Module: "b"}}},
		{"semicolons", "import a; import b\n",
			[]python.Import{{Module: "a"}, {Module: "b"}}},
		{"future and one-line if", "from __future__ import annotations\nif x: import nope\n",
			[]python.Import{{Module: "__future__", Names: []string{"annotations"}, From: true}}},
		{"not an import", "important = 1\nfromage = 2\nimport\nfrom x\n", nil},
		{"no trailing newline", "import last", []python.Import{{Module: "last"}}},
		{"crlf", "import a\r\nimport b\r\n", []python.Import{{Module: "a"}, {Module: "b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := python.TopLevelImports([]byte(tc.src))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("TopLevelImports (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTopLevelImportsStdlib runs the scanner over a real standard library
// file whose imports are known.
func TestTopLevelImportsStdlib(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testenv.RequirePython(t, "3.7"), "lib", "python3.7", "sqlite3", "dbapi2.py"))
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, imp := range python.TopLevelImports(src) {
		mods = append(mods, imp.Module)
	}
	if diff := cmp.Diff([]string{"datetime", "time", "collections.abc", "_sqlite3"}, mods); diff != "" {
		t.Errorf("imports of sqlite3/dbapi2.py (-want +got):\n%s", diff)
	}
}

func FuzzTopLevelImports(f *testing.F) {
	f.Add([]byte("import os\nfrom . import (a,\n b)\n\"\"\"import x\"\"\"\n"))
	f.Add([]byte("x = '\\\nimport y'\nimport z; from q import r as s\n"))
	if src, err := os.ReadFile("/usr/lib/python3.11/sqlite3/dbapi2.py"); err == nil {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, imp := range python.TopLevelImports(src) {
			if imp.Module == "" && imp.Level == 0 {
				t.Fatalf("import with neither module nor level: %+v", imp)
			}
			for _, part := range strings.Split(imp.Module, ".") {
				if imp.Module != "" && part == "" {
					t.Fatalf("bad module name %q", imp.Module)
				}
			}
			// Every module named must occur in the source text.
			if !bytes.Contains(src, []byte(strings.Split(imp.Module, ".")[0])) {
				t.Fatalf("module %q is not in the source", imp.Module)
			}
		}
	})
}

func TestParseMetadata(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     python.Metadata
		err      error
	}{
		{"wheel", "Metadata-Version: 2.1\nName: pip\nVersion: 23.0.1\nSummary: x\n\nName: not-this\n", python.Metadata{Name: "pip", Version: "23.0.1"}, nil},
		{"crlf and folded", "Name: PyYAML\r\nLicense: MIT\r\n  continued: no\r\nVersion: 6.0\r\n", python.Metadata{Name: "PyYAML", Version: "6.0"}, nil},
		{"case-insensitive keys", "name: a\nVERSION: 1\n", python.Metadata{Name: "a", Version: "1"}, nil},
		{"no version", "Name: a\n", python.Metadata{Name: "a"}, nil},
		{"no name", "Version: 1\n", python.Metadata{}, python.ErrNoName},
		{"empty", "", python.Metadata{}, python.ErrNoName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := python.ParseMetadata(strings.NewReader(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseMetadata (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte("Metadata-Version: 2.1\nName: pip\nVersion: 23.0.1\n\nbody"))
	f.Add([]byte("Name:\n\tx\nVersion 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := python.ParseMetadata(bytes.NewReader(b))
		if err != nil {
			if md != (python.Metadata{}) {
				t.Fatalf("error %v with metadata %+v", err, md)
			}
			return
		}
		if md.Name == "" || strings.ContainsAny(md.Name+md.Version, "\n") {
			t.Fatalf("bad metadata %+v", md)
		}
	})
}
