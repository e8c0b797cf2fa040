// Package source turns a scan SOURCE (dir:PATH, host, oci:PATH,
// docker-archive:FILE, registry:REF) into a directory on this machine that
// holds the image's root filesystem.
//
// Image layers are applied by an Extractor, which is the security-critical
// part: nothing an image contains can make it create, change or follow
// anything outside the scan's own temporary directory.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// ErrBadSource is wrapped by errors in the SOURCE argument itself: an
// unknown scheme, a missing path, a malformed reference. The CLI reports
// them as usage errors.
var ErrBadSource = errors.New("bad scan source")

// Options tune how a SOURCE is opened. The zero value is ready to use.
type Options struct {
	// Insecure allows plain HTTP and unverified TLS for registry: sources
	// (test registries).
	Insecure bool
	// TempDir is where images are extracted ("" = os.TempDir()).
	TempDir string
	// MaxFileSize bounds each regular file in a layer (0 = 8 GiB).
	MaxFileSize int64
	// MaxTotalSize bounds the bytes of all files of all layers (0 = 64 GiB).
	MaxTotalSize int64
	// MaxEntries bounds the tar entries of all layers (0 = 5 million).
	MaxEntries int
	// Platform selects an image from a multi-platform index, e.g.
	// "linux/arm64" ("" = this machine's).
	Platform string
}

// Tree is a SOURCE made available as files on this machine.
type Tree struct {
	// Spec is the SOURCE as given.
	Spec string
	// Dir is the host directory that is the image's "/" ("/" for host).
	Dir string
	// RootFS is true for a whole root filesystem (host, images, a dir:
	// that has etc/, usr/ or bin/) and false for a tool folder such as
	// dir:/opt/hostedtoolcache.
	RootFS bool
	// Image holds the manifest and config facts of oci:, docker-archive:
	// and registry: sources; nil otherwise.
	Image *snapshot.Image
	// Architecture in GOARCH terms, when known.
	Architecture string
	// Skipped lists image entries not created on disk (device nodes,
	// FIFOs), sorted by path.
	Skipped []snapshot.SkippedEntry

	// tmp is the directory Open created and Close removes; "" when
	// nothing was extracted.
	tmp string
}

// Close removes whatever Open extracted. It does nothing for dir: and host
// sources and is safe to call more than once.
func (t *Tree) Close() error {
	if t == nil || t.tmp == "" {
		return nil
	}
	err := removeTree(t.tmp)
	t.tmp = ""
	return err
}

// Open makes the files of SOURCE available on this machine. SOURCE is one
// of dir:PATH, host, oci:PATH[@DIGEST|:REFNAME], docker-archive:FILE[:TAG]
// or registry:REF. The caller must Close the Tree.
func Open(ctx context.Context, spec string, opts Options) (*Tree, error) {
	scheme, rest, _ := strings.Cut(spec, ":")
	switch {
	case spec == "host":
		return &Tree{Spec: spec, Dir: "/", RootFS: true, Architecture: runtime.GOARCH}, nil
	case scheme == "dir":
		return openDir(spec, rest)
	case scheme == "oci", scheme == "docker-archive", scheme == "registry":
		if rest == "" {
			return nil, fmt.Errorf("%w: %q names no image after %q", ErrBadSource, spec, scheme+":")
		}
		img, facts, err := openImage(ctx, scheme, rest, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec, err)
		}
		t, err := extractImage(ctx, img, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec, err)
		}
		t.Spec = spec
		t.Image = facts
		t.Architecture = facts.Architecture
		return t, nil
	}
	return nil, fmt.Errorf("%w: %q: use dir:PATH, host, oci:PATH, docker-archive:FILE or registry:REF", ErrBadSource, spec)
}

// openDir opens an unpacked tree. It is a root filesystem when it has
// etc/, usr/ or bin/ at its top, as every Linux distribution's root does
// and no tool cache (hostedtoolcache, pyenv versions, a JDK) does; a
// tool folder's programs are built for this machine, so scanners resolve
// their libraries against this machine instead.
func openDir(spec, p string) (*Tree, error) {
	if p == "" {
		return nil, fmt.Errorf("%w: %q names no directory after \"dir:\"", ErrBadSource, spec)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadSource, spec, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadSource, spec, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s: not a directory", ErrBadSource, spec)
	}
	t := &Tree{Spec: spec, Dir: abs}
	for _, d := range []string{"etc", "usr", "bin"} {
		if fi, err := os.Stat(filepath.Join(abs, d)); err == nil && fi.IsDir() {
			t.RootFS = true
			break
		}
	}
	return t, nil
}

// extractImage applies the image's layers onto a fresh directory. The
// image root is TempDir/imagegate-*/rootfs: the outer directory is 0700,
// so files kept with their setuid bits or ownership are out of reach of
// other users, and the rootfs itself can take the image's own mode.
func extractImage(ctx context.Context, img v1.Image, opts Options) (t *Tree, err error) {
	tmp, err := os.MkdirTemp(opts.TempDir, "imagegate-")
	if err != nil {
		return nil, fmt.Errorf("make extraction directory (set --temp-dir to a writable place): %w", err)
	}
	defer func() {
		if err != nil {
			removeTree(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o700); err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	x, err := NewExtractor(dir, opts)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	for i, l := range layers {
		if err := applyLayer(ctx, x, i+1, l); err != nil {
			return nil, err
		}
	}
	if err := x.Finish(); err != nil {
		return nil, err
	}
	return &Tree{Dir: dir, RootFS: true, Skipped: x.Skipped(), tmp: tmp}, nil
}

// applyLayer streams one layer into x; errors name the layer (from 1).
func applyLayer(ctx context.Context, x *Extractor, n int, l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("layer %d: open: %w", n, err)
	}
	defer rc.Close()
	if err := x.ApplyLayer(ctx, rc); err != nil {
		return err
	}
	// Read to the end so that go-containerregistry verifies the layer's
	// digest; the tar end marker usually comes before the stream's end.
	if _, err := io.Copy(io.Discard, io.LimitReader(rc, 1<<30)); err != nil {
		return fmt.Errorf("layer %d: read: %w", n, err)
	}
	return nil
}

// removeTree removes an extraction directory, first making directories
// writable where needed (a non-root user cannot empty a read-only one).
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
