// Command imagegate scans CI build images, gates their releases and serves
// their rollouts. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(runMain(os.Args[1:]))
}

// runMain is the program: main owns the signals, which end the context so
// that serve stops gracefully and scans clean up their temporary folders.
func runMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr)
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
