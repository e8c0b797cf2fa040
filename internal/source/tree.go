package source

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// Runner executes an image's programs; sandbox.Local and sandbox.Chroot
// implement it. Run returns an error only when the program could not be
// started at all; how it ended (exit code, signal, timeout) is in the
// Result. Implementations must be safe for concurrent use.
type Runner interface {
	Run(ctx context.Context, cmd sandbox.Command) (sandbox.Result, error)
	// Mode names the way programs run: "local" or "chroot".
	Mode() string
}

// Tree is a SOURCE made available as files on this machine: what every
// scan collector and every spec test is given.
type Tree struct {
	// Spec is the SOURCE as given.
	Spec string
	// Dir is the host directory that is the image's "/" ("/" for host).
	Dir string
	// RootFS is true for a whole root filesystem (host, images, a dir:
	// that has an os-release, a dynamic loader, libc, or /etc and /usr)
	// and false for a tool folder such as dir:/opt/hostedtoolcache or one
	// Python prefix, whose programs are built to run on this machine and
	// whose shared libraries therefore come from this machine.
	RootFS bool
	// Image holds the manifest and config facts of oci:, docker-archive:
	// and registry: sources; nil otherwise.
	Image *snapshot.Image
	// Architecture in GOARCH terms, when known.
	Architecture string
	// Skipped lists image entries not created on disk (device nodes,
	// FIFOs), sorted by path.
	Skipped []snapshot.SkippedEntry
	// Runner runs the image's programs; nil when nothing may be executed.
	// Open leaves it nil: the scan chooses it (--exec).
	Runner Runner

	// tmp is the directory Open created and Close removes; "" when
	// nothing was extracted.
	tmp string
	// mem holds the image when it was streamed into memory (Dir is "").
	mem *memTree
}

// Close removes whatever Open extracted. It does nothing for dir: and host
// sources and is safe to call more than once, and on a nil Tree.
func (t *Tree) Close() error {
	if t != nil {
		t.mem = nil
	}
	if t == nil || t.tmp == "" {
		return nil
	}
	err := removeTree(t.tmp)
	t.tmp = ""
	return err
}

// HostPath maps a path inside the image to the file on this machine,
// resolving symbolic links inside Dir, never on the host: an absolute link
// target such as /etc/alternatives/java means Dir/etc/alternatives/java.
func (t *Tree) HostPath(inImage string) (string, error) {
	if t.mem != nil || t.Dir == "" {
		// No Dir: held in memory, or closed; never a path relative to
		// the working directory.
		return "", fmt.Errorf("%s: %w; read it through the Tree", inImage, ErrNotOnDisk)
	}
	if t.Dir == "/" {
		return path.Clean("/" + inImage), nil
	}
	p, err := securejoin.SecureJoin(t.Dir, inImage)
	if err != nil {
		return "", fmt.Errorf("resolve %s inside %s: %w", inImage, t.Dir, err)
	}
	return p, nil
}

// LibraryRoot is the root against which absolute shared-library paths
// (RPATH, ld.so.conf, /usr/lib) are resolved.
func (t *Tree) LibraryRoot() string {
	if t.RootFS {
		return t.Dir
	}
	return "/"
}

// Resolve returns the path inside the image that inImage names once every
// symbolic link on the way is followed, inside the image.
func (t *Tree) Resolve(inImage string) (string, error) {
	if t.mem != nil {
		return t.mem.resolve(path.Clean("/" + inImage))
	}
	if t.Dir == "/" {
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
	rel, err := filepath.Rel(t.Dir, host)
	if err != nil {
		return "", fmt.Errorf("resolve %s inside %s: %w", inImage, t.Dir, err)
	}
	return path.Clean("/" + filepath.ToSlash(rel)), nil
}

// Origin tells how the installation at prefix (in-image) got there, from
// what is inside the tree only, so that two copies of one tree get the
// same answer: the in-image path by the conventions of the tools that make
// installations (hostedtoolcache, pyenv, nvm, sdkman), the <arch>.complete
// marker a tool cache writes beside each installation, conda's conda-meta.
// Where the tree's own path says nothing (dir:~/.pyenv/versions puts the
// build at /3.9.18), a collector may ask OriginOfPath about the prefix the
// installation was built for. The scan later replaces the answer with
// snapshot.OriginOSPackage when the OS package manager owns the runtime.
func (t *Tree) Origin(prefix string) string {
	if o := OriginOfPath(prefix); o != snapshot.OriginSource {
		return o
	}
	real, err := t.Resolve(prefix)
	if err == nil && prefix != "/" && real != "/" {
		if fi, err := t.Lstat(real + ".complete"); err == nil && fi.Mode().IsRegular() {
			return snapshot.OriginToolcache
		}
		if fi, err := t.Lstat(path.Join(real, "conda-meta")); err == nil && fi.IsDir() {
			return snapshot.OriginConda
		}
	}
	return snapshot.OriginSource
}

// OriginOfPath classifies an installation path by the conventions of the
// tools that make installations; snapshot.OriginSource when none applies.
func OriginOfPath(p string) string {
	p = path.Clean("/"+p) + "/"
	switch {
	case strings.Contains(p, "/hostedtoolcache/"), strings.Contains(p, "/toolcache/"):
		return snapshot.OriginToolcache
	case strings.Contains(p, "/.pyenv/versions/"):
		return snapshot.OriginPyenv
	case strings.Contains(p, "/.nvm/versions/"):
		return snapshot.OriginNVM
	case strings.Contains(p, "/.sdkman/candidates/"):
		return snapshot.OriginSDKMAN
	}
	return snapshot.OriginSource
}
