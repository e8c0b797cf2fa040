package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/imagegate/imagegate/internal/report"
	"github.com/spf13/cobra"
)

type globalOptions struct {
	verbose bool
	stderr  io.Writer
}

func (g *globalOptions) logger() *slog.Logger {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{stderr: stderr}
	root := &cobra.Command{
		Use:           "imagegate",
		Short:         "Scan CI build images, gate their releases, and roll them out",
		Long:          "imagegate inventories build images (runtimes, standard-library modules, OS packages, tools),\nfails a release that lost something nobody declared, and rolls images out in rings.\n\n" + exitHelpRoot,
		Version:       scannerVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log progress to stderr")
	root.AddCommand(newScanCmd(g), newDiffCmd(g), newCheckCmd(g))
	root.AddCommand(newServeCmd(g), newImageCmd(g), newRolloutCmd(g), newPinCmd(g), newResolveCmd(g), newVersionCmd(g))
	root.AddCommand(newReportCmd(g))
	root.AddCommand(newSignaturesCmd(g))
	root.AddCommand(newVerifyCmd(g))
	root.AddCommand(newSimulateCmd(g))
	root.AddCommand(newTokenCmd(g))
	root.AddCommand(newSubscriptionCmd(g), newOrgCmd(g))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{c, err}
	})
	return root
}

// writeOutput writes to --out atomically (a temporary file renamed into
// place, so a failed run never leaves half a report where the previous one
// was), or to stdout when out is empty or "-". A link is kept and what it
// points to replaced; a device, FIFO or socket (--out /dev/null, a named
// pipe) is written to in place, since a rename would replace it with a
// file — /dev/null included.
func writeOutput(stdout io.Writer, out string, write func(io.Writer) error) error {
	if out == "" || out == "-" {
		return write(stdout)
	}
	if real, err := filepath.EvalSymlinks(out); err == nil {
		out = real
	}
	if fi, err := os.Stat(out); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return fmt.Errorf("write %s: is a directory: name a file", out)
		}
		f, err := os.OpenFile(out, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		if err := write(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		return nil
	}
	dir := filepath.Dir(out)
	f, err := os.CreateTemp(dir, "."+filepath.Base(out)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// defaultFormat is json when stdout is not a terminal (a pipe or file: a
// machine reads it) and the table otherwise.
func defaultFormat(stdout io.Writer, out string) string {
	if out != "" && out != "-" {
		return report.JSON
	}
	if f, ok := stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return report.Table
		}
	}
	return report.JSON
}
