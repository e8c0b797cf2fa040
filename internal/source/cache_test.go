package source_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imagegate/imagegate/internal/source"
)

// blobCounter counts the blob downloads a registry serves, by digest.
type blobCounter struct {
	mu sync.Mutex
	n  map[string]int
	h  http.Handler
}

func (c *blobCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		c.mu.Lock()
		c.n[path.Base(r.URL.Path)]++
		c.mu.Unlock()
	}
	c.h.ServeHTTP(w, r)
}

func (c *blobCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// TestRegistryCacheFetchesOnlyChangedLayers scans one version of an image,
// then the next, which adds a layer on the same base: the second scan
// fetches the new layer only, and a third scan fetches no layer at all.
func TestRegistryCacheFetchesOnlyChangedLayers(t *testing.T) {
	counter := &blobCounter{n: map[string]int{}, h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(counter)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	base1 := mustTar(t, dir("etc/"), file("etc/os-release", "ID=test\n"), dir("usr/"), file("usr/base", strings.Repeat("b", 100_000)))
	base2 := mustTar(t, dir("opt/"), file("opt/tool", "v1"))
	app := mustTar(t, file("opt/tool", "v2"), file("opt/new", "new"))
	v1img := mustImage(t, v1.Config{}, "amd64", base1, base2)
	v2img := mustImage(t, v1.Config{}, "amd64", base1, base2, app)
	for tag, img := range map[string]v1.Image{"1": v1img, "2": v2img} {
		ref, err := name.ParseReference(host+"/test/app:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	layers, err := v2img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	layerFetches := func() map[string]int {
		got := map[string]int{}
		for d, n := range counter.take() {
			for _, ld := range digests {
				if d == ld {
					got[d] = n
				}
			}
		}
		return got
	}

	cache := t.TempDir()
	counter.take()
	for _, step := range []struct {
		tag      string
		inMemory bool
		want     map[string]int
		file     string // the file the tree must have, and its contents
		body     string
	}{
		{"1", true, map[string]int{digests[0]: 1, digests[1]: 1}, "/opt/tool", "v1"},
		{"2", true, map[string]int{digests[2]: 1}, "/opt/tool", "v2"},
		{"2", false, map[string]int{}, "/opt/new", "new"},
	} {
		tree, err := source.Open(context.Background(), "registry:"+host+"/test/app:"+step.tag,
			source.Options{Insecure: true, CacheDir: cache, InMemory: step.inMemory, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if b, err := tree.ReadFile(step.file); err != nil || string(b) != step.body {
			t.Errorf("tag %s: %s = %q, %v; want %q", step.tag, step.file, b, err, step.body)
		}
		tree.Close()
		if diff := cmp.Diff(step.want, layerFetches()); diff != "" {
			t.Errorf("scan of tag %s (in memory %v): layer downloads (-want +got):\n%s", step.tag, step.inMemory, diff)
		}
	}
	for _, d := range digests {
		h, _ := v1.NewHash(d)
		if _, err := os.Stat(filepath.Join(cache, h.Algorithm, h.Hex)); err != nil {
			t.Errorf("layer %s not in the cache: %v", d, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "sha256", ".partial-*")); len(left) != 0 {
		t.Errorf("partial downloads left: %v", left)
	}
}
