package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxPulls bounds the layers of one registry image fetched at once.
const maxPulls = 4

// DefaultCacheDir is where registry layers are kept between scans when
// Options.CacheDir is empty: the user's cache directory.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "imagegate", "blobs")
}

// blobCache keeps registry layers as they are stored (compressed), one
// file per digest, so that scanning the next version of an image fetches
// only the layers that changed. A file appears under its digest only
// once its contents were verified against it; partial downloads live
// under a temporary name and are removed.
type blobCache struct{ dir string }

func (c blobCache) path(h v1.Hash) string { return filepath.Join(c.dir, h.Algorithm, h.Hex) }

// cachedBlob is a registry layer fetched into the cache, in the
// background from the moment the image is opened.
type cachedBlob struct {
	l    v1.Layer
	path string
	size int64
	done chan struct{}
	err  error // set before done is closed
}

var _ blob = (*cachedBlob)(nil)

func (b *cachedBlob) Open() (io.ReadCloser, error) {
	<-b.done
	if b.err != nil {
		return nil, b.err
	}
	return os.Open(b.path)
}

func (b *cachedBlob) Size() int64 { return b.size }

// pullLayers starts fetching the layers that are not cached yet, at most
// maxPulls at a time, and returns them as blobs that wait for their
// fetch. It returns nil when the cache directory cannot be made: layers
// are then streamed from the registry as they are read.
func pullLayers(ctx context.Context, layers []v1.Layer, dir string, progress func(Event)) ([]blob, error) {
	c := blobCache{dir: dir}
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o700); err != nil {
		return nil, nil
	}
	sem := make(chan struct{}, maxPulls)
	out := make([]blob, len(layers))
	var wg sync.WaitGroup
	for i, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return nil, fmt.Errorf("layer %d: digest: %w", i+1, err)
		}
		size, _ := l.Size()
		b := &cachedBlob{l: l, path: c.path(h), size: size, done: make(chan struct{})}
		out[i] = b
		if _, err := os.Stat(b.path); err == nil {
			close(b.done)
			progress(Event{Kind: EventFetched, Layer: i + 1, Layers: len(layers), Bytes: size, Cached: true})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(b.done)
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				b.err = ctx.Err()
				return
			}
			if err := fetch(l, h, b.path, func(n int64) {
				progress(Event{Kind: EventFetching, Layer: i + 1, Layers: len(layers), Bytes: n, Total: size})
			}); err != nil {
				b.err = fmt.Errorf("layer %d: fetch %s: %w", i+1, h, err)
				return
			}
			progress(Event{Kind: EventFetched, Layer: i + 1, Layers: len(layers), Bytes: size})
		}()
	}
	return out, nil
}

// fetch downloads one layer to path, checking its digest before the file
// takes its name.
func fetch(l v1.Layer, h v1.Hash, path string, progress func(int64)) (err error) {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".partial-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	sum := sha256.New()
	w := io.MultiWriter(tmp, sum)
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, rerr := rc.Read(buf)
		if k > 0 {
			if _, err := w.Write(buf[:k]); err != nil {
				return err
			}
			n += int64(k)
			progress(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if h.Algorithm == "sha256" && hex.EncodeToString(sum.Sum(nil)) != h.Hex {
		return fmt.Errorf("the registry sent a blob whose digest is not %s", h)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
