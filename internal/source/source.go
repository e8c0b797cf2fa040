// Package source is the image on disk: it parses a scan SOURCE (dir:PATH,
// host, oci:PATH, docker-archive:FILE, registry:REF), turns it into a Tree
// (a directory on this machine that holds the image's files, with the
// Runner that runs its programs) and removes what it extracted on Close.
// Scan collectors and spec tests read images through a Tree only.
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
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
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
	// InMemory reads oci:, docker-archive: and registry: images into a
	// tree held in memory instead of extracting them (each layer streamed
	// once; nothing of the image is written to disk). Such a Tree has no
	// Dir and no host paths: it can be read, never executed.
	InMemory bool
	// Logger receives debug lines about reading the image (nil = none).
	Logger *slog.Logger
	// CacheDir keeps registry: layers between scans, by digest, so that
	// the next scan fetches only the layers that changed ("" = no cache:
	// layers are streamed from the registry; DefaultCacheDir is the
	// user's cache directory).
	CacheDir string
	// Progress is told how fetching and unpacking layers goes (nil =
	// nobody). It is called from several goroutines at once.
	Progress func(Event)
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// The schemes of a SOURCE: what comes before its first colon ("host" has
// no colon and nothing after it).
const (
	SchemeHost          = "host"
	SchemeDir           = "dir"
	SchemeOCI           = "oci"
	SchemeDockerArchive = "docker-archive"
	SchemeRegistry      = "registry"
)

// Prefixes names the SOURCE forms in messages that tell a user how to name
// an image instead of a snapshot file.
const Prefixes = "dir:, host, oci:, docker-archive:, registry:"

// badSource is an ErrBadSource whose text starts with the SOURCE, as every
// message the CLI prints does ("SOURCE: what went wrong: why").
type badSource struct{ msg string }

func (e *badSource) Error() string        { return e.msg }
func (e *badSource) Is(target error) bool { return target == ErrBadSource }

func badSourcef(format string, args ...any) error {
	return &badSource{fmt.Sprintf(format, args...)}
}

// Ref is a SOURCE taken apart, before anything is opened.
type Ref struct {
	// Scheme is one of the Scheme constants.
	Scheme string
	// Location is what follows "Scheme:": a directory, an OCI layout
	// path[@DIGEST|:REFNAME], an archive FILE[:TAG] or a registry
	// reference; "" for host.
	Location string
}

// IsSource reports whether arg is meant as a SOURCE rather than as a
// snapshot file: it is "host" or starts with "dir:", "oci:",
// "docker-archive:" or "registry:". Such an argument may still be
// malformed ("dir:" alone); Parse and Open say why. Commands that take
// either a snapshot file or a SOURCE ask this, so that the list of
// schemes lives here only.
func IsSource(arg string) bool {
	if arg == SchemeHost {
		return true
	}
	scheme, _, ok := strings.Cut(arg, ":")
	return ok && (scheme == SchemeDir || isImageScheme(scheme))
}

func isImageScheme(scheme string) bool {
	return scheme == SchemeOCI || scheme == SchemeDockerArchive || scheme == SchemeRegistry
}

// Parse takes a SOURCE apart without touching the disk or the network.
// Its errors wrap ErrBadSource.
func Parse(spec string) (Ref, error) {
	scheme, rest, _ := strings.Cut(spec, ":")
	switch {
	case spec == SchemeHost:
		return Ref{Scheme: SchemeHost}, nil
	case scheme == SchemeDir:
		if rest == "" {
			return Ref{}, badSourcef("%q names no directory after \"dir:\"", spec)
		}
		return Ref{Scheme: scheme, Location: rest}, nil
	case isImageScheme(scheme):
		if rest == "" {
			return Ref{}, badSourcef("%q names no image after %q", spec, scheme+":")
		}
		return Ref{Scheme: scheme, Location: rest}, nil
	}
	if looksLikePath(spec) {
		return Ref{}, badSourcef("%q: use dir:PATH, host, oci:PATH, docker-archive:FILE or registry:REF; for this directory, dir:%s", spec, spec)
	}
	return Ref{}, badSourcef("%q: use dir:PATH, host, oci:PATH, docker-archive:FILE or registry:REF", spec)
}

// looksLikePath is true for an argument meant as a directory that lacks
// its dir: prefix: absolute, relative from here or home, or an existing
// directory.
func looksLikePath(arg string) bool {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, "./") || strings.HasPrefix(arg, "../") || strings.HasPrefix(arg, "~") || arg == "." {
		return true
	}
	fi, err := os.Stat(arg)
	return err == nil && fi.IsDir()
}

// Open makes the files of SOURCE available on this machine. SOURCE is one
// of dir:PATH, host, oci:PATH[@DIGEST|:REFNAME], docker-archive:FILE[:TAG]
// or registry:REF. The caller must Close the Tree.
func Open(ctx context.Context, spec string, opts Options) (*Tree, error) {
	ref, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	switch ref.Scheme {
	case SchemeHost:
		return &Tree{Spec: spec, Dir: "/", RootFS: true, Architecture: runtime.GOARCH}, nil
	case SchemeDir:
		return openDir(spec, ref.Location)
	}
	facts, layers, err := openImage(ctx, ref.Scheme, ref.Location, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	var t *Tree
	if opts.InMemory {
		t, err = streamImage(ctx, layers, opts.progress(), opts)
	} else {
		t, err = extractImage(ctx, layers, opts.progress(), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	t.Spec = spec
	t.Image = facts
	t.Architecture = facts.Architecture
	return t, nil
}

// openDir opens an unpacked tree. Whether it is a root filesystem or a tool
// folder is decided by what it holds (isRootFS); a tool folder's programs
// are built for this machine, so scanners resolve their libraries against
// this machine instead and run them locally.
func openDir(spec, p string) (*Tree, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, badSourcef("%s: %v", spec, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return nil, badSourcef("%s: %v", spec, err)
	}
	if !fi.IsDir() {
		return nil, badSourcef("%s: not a directory", spec)
	}
	return &Tree{Spec: spec, Dir: abs, RootFS: isRootFS(abs)}, nil
}

// rootFSMarks are what a Linux root filesystem has and an installation
// prefix never does: an os-release, a dynamic loader or a C library.
var rootFSMarks = []string{
	"etc/os-release", "usr/lib/os-release",
	"lib/ld-linux*.so*", "lib64/ld-linux*.so*", "lib/ld-musl-*.so*",
	"usr/lib/ld-linux*.so*", "usr/lib64/ld-linux*.so*",
	"lib/libc.so.6", "lib/*/libc.so.6", "usr/lib/*/libc.so.6", "lib/libc.musl-*",
}

// isRootFS tells a root filesystem from a tool folder by content. A prefix
// such as a Python installation (bin/, lib/, include/, share/) has bin/ and
// lib/ too, so those prove nothing; an os-release, a loader or libc does,
// and so does the /etc beside /usr that every distribution has (a conda
// environment has etc/ but no usr/).
func isRootFS(dir string) bool {
	for _, m := range rootFSMarks {
		if hits, _ := filepath.Glob(filepath.Join(dir, m)); len(hits) > 0 {
			return true
		}
	}
	return isDir(filepath.Join(dir, "etc")) && isDir(filepath.Join(dir, "usr"))
}

// extractImage applies the image's layers onto a fresh directory. The
// image root is TempDir/imagegate-*/rootfs: the outer directory is 0700,
// so files kept with their setuid bits or ownership are out of reach of
// other users, and the rootfs itself can take the image's own mode.
func extractImage(ctx context.Context, layers []blob, progress func(Event), opts Options) (t *Tree, err error) {
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
	started := time.Now()
	if err := eachLayer(ctx, layers, progress, func(_ int, r io.Reader) error { return x.ApplyLayer(ctx, r) }); err != nil {
		return nil, err
	}
	if err := x.Finish(); err != nil {
		return nil, err
	}
	opts.logger().Debug("extracted image", "layers", len(layers), "dir", dir, "elapsed", time.Since(started))
	return &Tree{Dir: dir, RootFS: true, Skipped: x.Skipped(), tmp: tmp}, nil
}

// eachLayer calls apply with each layer's uncompressed tar stream, in
// order. The next layer is opened, and its decompression started, while
// the one before it is still being applied. Errors name the layer (from 1).
func eachLayer(ctx context.Context, layers []blob, progress func(Event), apply func(i int, r io.Reader) error) error {
	streams := make([]*readahead, len(layers))
	defer func() {
		for _, s := range streams {
			if s != nil {
				s.Close()
			}
		}
	}()
	open := func(i int) error {
		rc, err := layers[i].Open()
		if err == nil {
			total := layers[i].Size()
			rc = &progressReader{ReadCloser: rc, report: func(n int64) {
				progress(Event{Kind: EventUnpacking, Layer: i + 1, Layers: len(layers), Bytes: n, Total: total})
			}}
			rc, err = uncompressed(rc)
		}
		if err != nil {
			return fmt.Errorf("layer %d: open: %w", i+1, err)
		}
		streams[i] = newReadahead(rc)
		return nil
	}
	for i := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		if streams[i] == nil {
			if err := open(i); err != nil {
				return err
			}
		}
		if i+1 < len(layers) {
			if err := open(i + 1); err != nil {
				return err
			}
		}
		if err := apply(i, streams[i]); err != nil {
			return err
		}
		// Read to the end so that go-containerregistry verifies the
		// layer's digest; the tar end marker usually comes before the
		// stream's end.
		if _, err := io.Copy(io.Discard, io.LimitReader(streams[i], 1<<30)); err != nil {
			return fmt.Errorf("layer %d: read: %w", i+1, err)
		}
		streams[i].Close()
		progress(Event{Kind: EventUnpacked, Layer: i + 1, Layers: len(layers), Bytes: layers[i].Size(), Total: layers[i].Size()})
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
