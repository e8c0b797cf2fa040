// Command imagegate scans CI build images, gates their releases and serves
// their rollouts. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(runMain(os.Args[1:]))
}

// runMain is the program: main owns the signals, which end the context so
// that serve stops gracefully and scans clean up their temporary folders.
func runMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer watchStdout(cancel)()
	return run(ctx, args, os.Stdout, os.Stderr)
}

// watchStdout ends the context when standard output is a pipe or socket
// whose reader has gone (`imagegate scan ... | head -1`). Left to the
// runtime, the first write after that would kill the process with SIGPIPE
// before a scan removes its temporary folder. Asking for SIGPIPE turns
// such writes into EPIPE errors instead, for every descriptor, so a signal
// is only taken as "stop" when stdout itself is broken: a client that
// hangs up on serve must not stop the server. It returns the function that
// stops watching.
func watchStdout(cancel context.CancelFunc) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGPIPE)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sigs:
				if stdoutBroken() {
					cancel()
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// stdoutBroken reports whether writes to standard output can no longer
// reach anyone: Linux reports POLLERR on a pipe without readers and
// POLLHUP or POLLERR on a socket the peer closed.
func stdoutBroken() bool {
	fds := []unix.PollFd{{Fd: int32(os.Stdout.Fd()), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0
}

// run executes one command line and returns the process exit code (see
// exitCodes): 0 success, 1 the gate fails or the server refused, 2 usage or
// input error, 3 the server cannot be reached or failed.
func run(ctx context.Context, args []string, stdout, stderr *os.File) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := exitCode(err)
	if err != nil && !gateFailed(err) {
		printError(stderr, err)
	}
	return code
}
