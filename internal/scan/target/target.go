// Package target is what every scan collector is given: the image as files
// on this machine, and a way to run its programs.
package target

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// Runner executes an image's programs. Run returns an error only when the
// program could not be started at all; how it ended is in the Result.
// Implementations must be safe for concurrent use.
type Runner interface {
	Run(ctx context.Context, cmd sandbox.Command) (sandbox.Result, error)
	// Mode names the way programs run: "local" or "chroot".
	Mode() string
}

// Target is an image as files on this machine.
type Target struct {
	// Root is the directory on this machine that holds the image's "/"
	// ("/" itself for the host).
	Root string
	// RootFS is true when Root is a whole root filesystem (an image, the
	// host, a dir: with /etc or /usr), false for a tool folder such as
	// /opt/hostedtoolcache, whose programs are built to run on this machine
	// and whose shared libraries therefore come from this machine.
	RootFS bool
	// Runner runs the image's programs; nil when nothing may be executed.
	Runner Runner
}

// HostPath maps a path inside the image to the file on this machine,
// resolving symbolic links inside Root, never on the host: an absolute link
// target such as /etc/alternatives/java means Root/etc/alternatives/java.
func (t *Target) HostPath(inImage string) (string, error) {
	if t.Root == "/" {
		return path.Clean("/" + inImage), nil
	}
	p, err := securejoin.SecureJoin(t.Root, inImage)
	if err != nil {
		return "", fmt.Errorf("resolve %s inside %s: %w", inImage, t.Root, err)
	}
	return p, nil
}

// LibraryRoot is the root against which absolute shared-library paths
// (RPATH, ld.so.conf, /usr/lib) are resolved.
func (t *Target) LibraryRoot() string {
	if t.RootFS {
		return t.Root
	}
	return "/"
}

// Finder recognises installations while the scan walks the image once.
type Finder interface {
	// Visit is called for each directory the walk reaches, with its path
	// inside the image and its entries, from one goroutine at a time. It
	// returns true to keep the walk out of dir's subdirectories (e.g. a
	// Python standard library that the finder reads itself).
	Visit(dir string, entries []fs.DirEntry) (prune bool)
}

// Resolve returns the path inside the image that inImage names once every
// symbolic link on the way is followed, inside the image.
func (t *Target) Resolve(inImage string) (string, error) {
	if t.Root == "/" {
		p, err := filepath.EvalSymlinks(path.Clean("/" + inImage))
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", inImage, err)
		}
		return p, nil
	}
	host, err := t.HostPath(inImage)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(t.Root, host)
	if err != nil {
		return "", fmt.Errorf("resolve %s inside %s: %w", inImage, t.Root, err)
	}
	return path.Clean("/" + filepath.ToSlash(rel)), nil
}

// Origin tells how the installation at prefix (in-image) got there, by the
// conventions of the tools that make them. A tool cache scanned on its own
// (dir:/opt/hostedtoolcache) is recognised by the <arch>.complete marker the
// cache writes beside each installation. The scan later replaces the answer
// with snapshot.OriginOSPackage when the OS package manager owns the runtime.
func (t *Target) Origin(prefix string) string {
	host, _ := t.HostPath(prefix)
	both := prefix + "\x00" + host
	switch {
	case strings.Contains(both, "/hostedtoolcache/"), strings.Contains(both, "/toolcache/"):
		return snapshot.OriginToolcache
	case strings.Contains(both, "/.pyenv/versions/"):
		return snapshot.OriginPyenv
	case strings.Contains(both, "/.nvm/versions/"):
		return snapshot.OriginNVM
	case strings.Contains(both, "/.sdkman/candidates/"):
		return snapshot.OriginSDKMAN
	}
	if host != "" && prefix != "/" {
		if fi, err := os.Lstat(host + ".complete"); err == nil && fi.Mode().IsRegular() {
			return snapshot.OriginToolcache
		}
		if fi, err := os.Lstat(filepath.Join(host, "conda-meta")); err == nil && fi.IsDir() {
			return snapshot.OriginConda
		}
	}
	return snapshot.OriginSource
}
