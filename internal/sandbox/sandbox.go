// Package sandbox runs an image's own programs: directly on this machine
// (Local) or inside the image's root filesystem in fresh namespaces (Chroot).
//
// Any binary that imports this package may be re-executed as the sandbox's
// init (see init.go), so packages it links should do no heavy work in init().
package sandbox

import (
	"io"
	"syscall"
	"time"
)

// Command is one program run inside the image.
type Command struct {
	// Path is the executable's path inside the image (absolute).
	Path string
	// Args are the arguments after the program name (unlike exec.Cmd.Args);
	// argv[0] is Path.
	Args []string
	// Env is the complete environment; nothing is inherited.
	Env []string
	// Dir is the working directory inside the image; "/" when empty.
	Dir   string
	Stdin io.Reader
	// Stdout and Stderr receive output as it is produced. At most
	// MaxOutput bytes of each are delivered; the rest is discarded.
	Stdout, Stderr io.Writer
	// Timeout kills the program (and everything it started) after this long.
	// Zero means the context's deadline alone.
	Timeout   time.Duration
	MaxOutput int64
	// User runs the program (and Before and After) as this user instead
	// of as the caller; setting it needs root.
	User *Credential
	// Before are programs (absolute path, then arguments) run one after
	// another ahead of the program, and After behind it, with its
	// environment, directory and user. In a Chroot they share the
	// program's sandbox, so what Before writes the program sees. Their
	// output is discarded and their exit status ignored (a test's set-up
	// and tear-down, as container-structure-test runs them); one that
	// cannot be started fails Run.
	Before, After [][]string
}

// Credential is a user to run as, resolved inside the image.
type Credential struct {
	UID, GID uint32
	// Groups are the supplementary groups; none when empty.
	Groups []uint32
}

func (c *Credential) sys() *syscall.Credential {
	if c == nil {
		return nil
	}
	return &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: append([]uint32{}, c.Groups...)}
}

// Result is how a program ended.
type Result struct {
	// ExitCode is the program's exit status, or -1 when a signal ended it.
	ExitCode int
	// Signal names the signal that ended it ("segmentation fault"), if any.
	Signal string
	// TimedOut is true when Timeout or the context ended it.
	TimedOut bool
}
