package snapshot_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/snapshot"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
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

func TestWriteFormats(t *testing.T) {
	s := sample()
	s.OS = snapshot.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}
	s.Runtimes[1].Modules[0].MissingLibraries = []string{"libsqlite3.so.0"}
	s.Tools[1].Version = "2.39.5"
	s.Warnings = []string{"programs in the image were not run"}
	for _, tc := range []struct {
		name  string
		write func(*bytes.Buffer, *snapshot.Snapshot) error
	}{
		{"table.golden", func(b *bytes.Buffer, s *snapshot.Snapshot) error { return snapshot.WriteTable(b, s) }},
		{"markdown.golden", func(b *bytes.Buffer, s *snapshot.Snapshot) error { return snapshot.WriteMarkdown(b, s) }},
		{"snapshot.golden.json", func(b *bytes.Buffer, s *snapshot.Snapshot) error { return snapshot.Encode(b, s) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.Normalize()
			var b bytes.Buffer
			if err := tc.write(&b, s); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b.Bytes())
		})
	}
}
