// Package sandbox runs an image's own programs: directly on this machine
// (Local) or inside the image's root filesystem in fresh namespaces (Chroot).
//
// Any binary that imports this package may be re-executed as the sandbox's
// init (see init.go), so packages it links should do no heavy work in init().
package sandbox

import (
	"io"
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
