package snapshot_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// TestRenderingsInVersionOrder: tables and Markdown list runtimes by kind,
// then version as the runtime orders them (3.6 before 3.10), while the
// JSON keeps its canonical order.
func TestRenderingsInVersionOrder(t *testing.T) {
	bad := []snapshot.Module{{Name: "ssl", Status: snapshot.StatusBroken, Error: "x"}}
	s := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/x", Exec: "none", Runtimes: []snapshot.Runtime{
		{Kind: "python", Version: "3.10.13", Path: "/c", Modules: bad},
		{Kind: "python", Version: "3.6.15", Path: "/a", Modules: bad},
		{Kind: "node", Version: "20.11.1", Path: "/n20"},
		{Kind: "python", Version: "2.7.18", Path: "/b", Modules: bad},
		{Kind: "node", Version: "9.11.2", Path: "/n9"},
	}}
	s.Normalize()
	want := []string{"node 9.11.2", "node 20.11.1", "python 2.7.18", "python 3.6.15", "python 3.10.13"}
	row := regexp.MustCompile(`(?m)^(?:\| )?(node|python)(?:\s+| \| )([0-9.]+)\s`)
	for _, format := range []string{"table", "markdown"} {
		var buf bytes.Buffer
		if err := snapshot.Formats.Write(&buf, format, s); err != nil {
			t.Fatal(err)
		}
		var got []string
		seen := map[string]bool{}
		for _, m := range row.FindAllStringSubmatch(buf.String(), -1) {
			if r := m[1] + " " + m[2]; !seen[r] { // the runtimes table, not the problems after it
				seen[r] = true
				got = append(got, r)
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s runtimes (-want +got):\n%s\n%s", format, d, buf.String())
		}
		// The modules that are not ok follow the same order.
		text := buf.String()
		if i, j, k := strings.Index(text, "2.7.18 "), strings.LastIndex(text, "3.6.15"), strings.LastIndex(text, "3.10.13"); !(i < j && j < k) {
			t.Errorf("%s: problems not in version order:\n%s", format, text)
		}
	}
}
