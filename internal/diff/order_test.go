package diff_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// TestWriteRuntimesInVersionOrder: the table and the Markdown list python
// 3.6's changes before 3.10's; the JSON keeps its order by ID.
func TestWriteRuntimesInVersionOrder(t *testing.T) {
	rt := func(v, status string) snapshot.Runtime {
		return snapshot.Runtime{Kind: "python", Version: v, Path: "/opt/" + v, Modules: []snapshot.Module{{Name: "ssl", Status: status}}}
	}
	old := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Runtimes: []snapshot.Runtime{rt("3.10.13", "ok"), rt("3.6.15", "ok")}}
	new := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Runtimes: []snapshot.Runtime{rt("3.10.14", "broken"), rt("3.6.16", "broken")}}
	r := diff.Compare(old, new, nil)
	if r.Changes[0].ID != "runtime/python@3.10" {
		t.Fatalf("JSON order changed: first is %s", r.Changes[0].ID)
	}
	for _, format := range []string{"table", "markdown"} {
		var buf bytes.Buffer
		if err := r.Write(&buf, format); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, id := range []string{"runtime/python@3.%s/module/ssl", "runtime/python@3.%s`"} {
			six := strings.Index(out, strings.ReplaceAll(id, "%s", "6"))
			ten := strings.Index(out, strings.ReplaceAll(id, "%s", "10"))
			if format == "table" && strings.HasSuffix(id, "`") {
				continue
			}
			if six < 0 || ten < 0 || six > ten {
				t.Errorf("%s: %s: 3.6 at %d, 3.10 at %d, want 3.6 first:\n%s", format, id, six, ten, out)
			}
		}
	}
}

// TestMarkdownHeader: the header says what its parentheses hold, and a
// side without an OS (a tool folder) has none.
func TestMarkdownHeader(t *testing.T) {
	old := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/a", OS: snapshot.OS{PrettyName: "Debian GNU/Linux 12 (bookworm)"}}
	new := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/toolcache"}
	var buf bytes.Buffer
	if err := diff.Compare(old, new, nil).Write(&buf, "markdown"); err != nil {
		t.Fatal(err)
	}
	want := "Comparing `dir:/a` (OS: Debian GNU/Linux 12 (bookworm)) with `dir:/toolcache`.\n"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("markdown lacks %q:\n%s", want, buf.String())
	}
	if strings.Contains(buf.String(), "(-)") {
		t.Errorf("markdown has an unexplained (-):\n%s", buf.String())
	}
}
