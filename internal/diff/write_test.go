package diff_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// release is a candidate image with a bit of everything: the incident, a
// declared removal, upgrades, an addition and a stale declaration.
func release(t *testing.T) *diff.Report {
	t.Helper()
	new := snap(func(s *snapshot.Snapshot) {
		incident(s)
		s.Source = "dir:/candidate"
		s.ScannedAt = s.ScannedAt.Add(24 * 60 * 60 * 1e9)
		s.Packages[0].Version = "3.40.1-2+deb12u2"
		s.Packages[1].Version = "3.0.14-1~deb12u2"
		s.Tools = []snapshot.Tool{
			{Name: "git", Path: "/usr/bin/git", Version: "2.39.5", Status: "ok"},
			{Name: "jq", Path: "/usr/bin/jq", Version: "1.6", Status: "ok"},
		}
		r := runtimeAt(s, "python", "3.7")
		r.Modules = append(r.Modules, snapshot.Module{Name: "tkinter", Status: "broken", Error: "_tkinter extension is missing", MissingLibraries: []string{"libtk8.6.so"}})
	})
	ch, err := diff.ParseChanges("changes.yaml", []byte(`changes:
  - remove: tool/php*
    reason: PHP moves to its own image | see ADR-7
  - remove: package/deb/libpython2*
`))
	if err != nil {
		t.Fatal(err)
	}
	return diff.Compare(snap(nil), new, ch)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, d)
	}
}

func TestWriteGolden(t *testing.T) {
	r := release(t)
	if !r.Failed() || r.Summary.Unexpected != 2 {
		t.Fatalf("release: Failed() = %v with %d unexpected, want 2 (sqlite3 broken, libssl3 downgraded)", r.Failed(), r.Summary.Unexpected)
	}
	for _, f := range []struct{ format, file string }{
		{"table", "release.table"}, {"json", "release.json"}, {"markdown", "release.md"}, {"junit", "release.junit.xml"},
	} {
		t.Run(f.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Write(&buf, f.format); err != nil {
				t.Fatal(err)
			}
			golden(t, f.file, buf.Bytes())
		})
	}
	var buf bytes.Buffer
	if err := diff.Compare(snap(nil), snap(nil), nil).Write(&buf, "table"); err != nil {
		t.Fatal(err)
	}
	golden(t, "unchanged.table", buf.Bytes())
}

// The incident line reads as the issue promises: the verdict, the module,
// the transition and Python's own words, failures first.
func TestTableIncidentFirst(t *testing.T) {
	var buf bytes.Buffer
	if err := release(t).Write(&buf, "table"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	var line string
	for i, l := range lines {
		if strings.Contains(l, "sqlite3") {
			line = l
			for _, before := range lines[:i] {
				if !strings.HasPrefix(before, "UNEXPECTED") {
					t.Errorf("line %q comes before the unexpected sqlite3 line", before)
				}
			}
			break
		}
	}
	for _, want := range []string{"UNEXPECTED  runtime/python@3.7/module/sqlite3", "ok → import-error", "No module named '_sqlite3'"} {
		if !strings.Contains(line, want) {
			t.Errorf("table line %q lacks %q", line, want)
		}
	}
}

func TestWriteJSONRoundTrips(t *testing.T) {
	r := release(t)
	var buf bytes.Buffer
	if err := r.Write(&buf, "json"); err != nil {
		t.Fatal(err)
	}
	var back diff.Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, &back); d != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", d)
	}
	if back.Schema != diff.SchemaV1 || back.Result != "fail" {
		t.Errorf("schema %q result %q", back.Schema, back.Result)
	}
}

// JUnit consumers (Azure Pipelines, GitHub, GitLab) count testcases and
// failures from the attributes; they must agree with the body.
func TestWriteJUnitCounts(t *testing.T) {
	var buf bytes.Buffer
	if err := release(t).Write(&buf, "junit"); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	cases, failures, skipped := 0, 0, 0
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			cases++
			if c.Failure != nil {
				failures++
			}
			if c.Skipped != nil {
				skipped++
			}
		}
	}
	// 2 unexpected changes, 6 sections, 1 stale declaration.
	if doc.Tests != 9 || cases != 9 || doc.Failures != 2 || failures != 2 || doc.Skipped != 1 || skipped != 1 {
		t.Errorf("tests=%d cases=%d failures=%d/%d skipped=%d/%d, want 9 cases, 2 failures, 1 skipped",
			doc.Tests, cases, doc.Failures, failures, doc.Skipped, skipped)
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	err := release(t).Write(&bytes.Buffer{}, "yaml")
	if err == nil || !strings.Contains(err.Error(), "table, json, markdown, junit") {
		t.Errorf("Write(yaml) = %v, want an error listing the formats", err)
	}
}

func TestLoadPair(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, s *snapshot.Snapshot) string {
		var buf bytes.Buffer
		if err := snapshot.Encode(&buf, s); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldPath, newPath := write("old.json", snap(nil)), write("new.json", snap(incident))
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"schema":"imagegate/snapshot/v1","packages":7}`), 0o644); err != nil {
		t.Fatal(err)
	}

	old, new, err := diff.LoadPair(context.Background(), oldPath, newPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(diff.Compare(old, new, nil)); len(got) != 2 {
		t.Errorf("loaded pair gives %v, want the incident's two changes", got)
	}

	_, _, err = diff.LoadPair(context.Background(), oldPath, bad)
	if !errors.Is(err, snapshot.ErrSchema) || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("LoadPair with a bad new file: %v, want ErrSchema naming %s", err, bad)
	}
	absent := filepath.Join(dir, "absent.json")
	_, _, err = diff.LoadPair(context.Background(), absent, newPath)
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), absent+": ") {
		t.Errorf("LoadPair with a missing old file: %v, want ErrNotExist naming %s first", err, absent)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := diff.LoadPair(ctx, oldPath, newPath); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadPair with a cancelled context: %v", err)
	}
}
