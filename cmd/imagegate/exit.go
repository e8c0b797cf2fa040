package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/source"
)

// Exit codes. Each command's --help lists the ones it can return.
const (
	exitOK      = 0
	exitFailed  = 1 // the gate fails, or the server refused
	exitUsage   = 2 // usage or input error
	exitOffline = 3 // the server cannot be reached or failed (5xx)
)

// errGateFailed is returned by commands whose verdict is "fail"; it maps to
// exit code 1 and prints nothing more (the report has said it all).
var errGateFailed = errors.New("gate failed")

func gateFailed(err error) bool { return errors.Is(err, errGateFailed) }

// exitCodes is the one table from error kind to exit code; the first entry
// that matches decides, and anything else is a usage or input error (2).
// The server's kinds are those of internal/api's error table.
var exitCodes = []struct {
	kind error
	code int
}{
	{errGateFailed, exitFailed},
	{rollout.ErrNotFound, exitFailed},
	{rollout.ErrConflict, exitFailed},
	{rollout.ErrForbidden, exitFailed},
	{rollout.ErrPrecondition, exitFailed},
	{rollout.ErrInvalid, exitFailed},
	{api.ErrUnauthenticated, exitFailed},
	{api.ErrTooLarge, exitFailed},
	{apiclient.ErrUnreachable, exitOffline},
	// Throttled is transient, like a server that is down: try again later.
	{api.ErrRateLimited, exitOffline},
	{errServerFailed, exitOffline},
}

// errServerFailed is what an answer of 5xx (or one that is not the API's
// error body) is: the server, not the request, went wrong.
var errServerFailed = errors.New("the server failed")

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) && (ae.Status >= 500 || api.KindOf(ae.Code) == nil) {
		err = errors.Join(err, errServerFailed)
	}
	for _, e := range exitCodes {
		if errors.Is(err, e.kind) {
			return e.code
		}
	}
	return exitUsage
}

// The exit-code paragraphs of --help: each command lists only the codes it
// can return.
const (
	exitHelpScan = `Exit codes:
  0  success
  2  usage or input error (bad source, unreadable file), with a one-line message`
	exitHelpGate = `Exit codes:
  0  the gate passes
  1  the gate fails: something changed or broke that nobody declared
  2  usage or input error (bad source, unreadable file, invalid spec), with a one-line message`
	exitHelpServe = `Exit codes:
  0  stopped on SIGINT or SIGTERM
  2  usage or configuration error, or the server could not start`
	exitHelpClient = `Exit codes:
  0  success
  1  the server refused: not found, conflict, forbidden, precondition failed, invalid, unauthenticated
  2  usage error (arguments, flags, unreadable input files)
  3  the server cannot be reached, or it failed (HTTP 5xx), or it throttled the token (429: retry later)`
	exitHelpRoot = `Exit codes (each command's --help lists its own):
  0  success (check, diff: the gate passes)
  1  check, diff: the gate fails; client commands: the server refused
  2  usage or input error
  3  client commands: the server cannot be reached or failed`
)

// usageError is a command line that does not fit the command: printed with
// the usage line and where to read more.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// exactArgs is cobra.ExactArgs in words a user can act on: what is missing
// by name, from the Use line.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		names := argNames(cmd)
		switch {
		case len(args) < n && len(args) < len(names):
			return &usageError{cmd, fmt.Errorf("missing %s", strings.Join(names[len(args):min(n, len(names))], " "))}
		case len(args) < n:
			return &usageError{cmd, fmt.Errorf("want %d %s, got %d", n, report.Plural(n, "argument", "arguments"), len(args))}
		}
		return &usageError{cmd, fmt.Errorf("too many arguments: want %d, got %d (%s)", n, len(args), strings.Join(args[n:], " "))}
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return &usageError{cmd, fmt.Errorf("takes no arguments, got %s", strings.Join(args, " "))}
}

// argNames are the upper-case words of a command's Use line: "scan SOURCE"
// → [SOURCE].
func argNames(cmd *cobra.Command) []string {
	var names []string
	for _, w := range strings.Fields(cmd.Use)[1:] {
		if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[") {
			break
		}
		if w == strings.ToUpper(w) {
			names = append(names, w)
		}
	}
	return names
}

// report prints err for run: one line, and for a usage error the usage
// line and the help to read.
func printError(stderr io.Writer, err error) {
	fmt.Fprintf(stderr, "imagegate: %s\n", report.OneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) && ue.cmd != nil {
		fmt.Fprintf(stderr, "usage: %s\nsee %s --help\n", ue.cmd.UseLine(), ue.cmd.CommandPath())
	}
}

// notASnapshot words the error of reading arg as a snapshot file when it is
// not one, the same for check, diff and --baseline: a missing file or a
// directory most often means a SOURCE without its prefix.
func notASnapshot(arg string, err error) error {
	if fi, serr := os.Stat(arg); serr == nil && fi.IsDir() {
		return fmt.Errorf("%s: is a directory, not a snapshot file: to scan it, use dir:%s", arg, arg)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such snapshot file (a SOURCE needs a prefix: %s)", arg, source.Prefixes)
	}
	return err
}

// unwrapPath drops the operation and path of a *fs.PathError ("open
// x.yaml: no such file" → "no such file") for messages that name the file
// first themselves.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
