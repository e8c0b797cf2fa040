// Command imagegate scans CI build images, gates their releases and serves
// their rollouts. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/imagegate/imagegate/internal/report"
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

// run executes one command line and returns the process exit code:
// 0 success (the gate passes), 1 the gate fails, 2 usage or input error.
func run(ctx context.Context, args []string, stdout, stderr *os.File) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if gateFailed(err) {
		return 1
	}
	fmt.Fprintf(stderr, "imagegate: %v\n", report.OneLine(err.Error()))
	return 2
}
