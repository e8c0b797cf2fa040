package source_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imagegate/imagegate/internal/source"
)

// TestSameLayerOrder writes, in directories the layer itself creates
// (where extraction writes small files in the background), entries that
// replace, link to and write beneath files written just before them: the
// tree must be the one writing in order gives, extracted as in memory.
func TestSameLayerOrder(t *testing.T) {
	var many []ent
	for i := range 200 { // more than the writers hold at once
		many = append(many, file(fmt.Sprintf("d/many/%03d", i), fmt.Sprint(i)))
	}
	layers := [][]ent{
		append([]ent{
			dir("d/"), file("d/a", "1"), file("d/a", "2"), hardlink("d/h", "d/a"),
			file("d/b", "b"), dir("d/b/"), file("d/b/c", "c"),
			file("d/s", "s"), symlink("d/s", "a"),
			file("d/e/f", "f"), file("d/e", "e over a directory"),
			file("d/l", "l"), hardlink("d/l2", "d/l"), file("d/l", "l again"),
			file("d/t", "t"), symlink("d/u", "t"), file("d/n/x", "x"), hardlink("d/n/y", "d/u"),
		}, many...),
		{file("d/a", "3"), file("d/.wh.b", ""), file("d/many/000", "new"), file("d/many/.wh.001", "")},
	}
	var bs [][]byte
	for _, l := range layers {
		bs = append(bs, mustTar(t, l...))
	}
	archive := filepath.Join(t.TempDir(), "order.tar")
	if err := tarball.WriteToFile(archive, mustTag(t, "order:1"), mustImage(t, v1.Config{}, "amd64", bs...)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/d":      "dir 0755",
		"/d/a":    `file 0644 "3"`,
		"/d/h":    `file 0644 "2"`,
		"/d/s":    "link -> a",
		"/d/e":    `file 0644 "e over a directory"`,
		"/d/l":    `file 0644 "l again"`,
		"/d/l2":   `file 0644 "l"`,
		"/d/t":    `file 0644 "t"`,
		"/d/u":    "link -> t",
		"/d/n":    "dir 0755",
		"/d/n/x":  `file 0644 "x"`,
		"/d/n/y":  "link -> t",
		"/d/many": "dir 0755",
	}
	for i := range 200 {
		want[fmt.Sprintf("/d/many/%03d", i)] = fmt.Sprintf("file 0644 %q", fmt.Sprint(i))
	}
	want["/d/many/000"] = `file 0644 "new"`
	delete(want, "/d/many/001")
	for _, inMemory := range []bool{false, true} {
		t.Run(fmt.Sprintf("in-memory=%v", inMemory), func(t *testing.T) {
			tree, err := source.Open(context.Background(), "docker-archive:"+archive, source.Options{InMemory: inMemory, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			if diff := cmp.Diff(want, dumpTree(t, tree)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
		})
	}
}
