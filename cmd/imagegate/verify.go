package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/verify"
)

// imagegate verify [--once | --interval 24h], imagegate verify list

type verifyOptions struct {
	*clientOptions
	once     bool
	interval time.Duration
	insecure bool
	tempDir  string
	cacheDir string
}

type verifyListOptions struct {
	*clientOptions
	label string
}

func newVerifyCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	opts := &verifyOptions{clientOptions: co}
	cmd := &cobra.Command{
		Use:   "verify [--once | --interval 24h]",
		Short: "Re-verify the live image versions: pull each by digest, scan, and report drift to the server",
		Long: `Asks the server which versions are live (each label's default, a running rollout's
versions, pinned versions) among those pushed with --ref, pulls each by the digest it was
pushed with, scans it with the recorded options, runs today's automatic checks, and posts
the result. The server decides: drift (the tag moved, or the image no longer scans to the
stored snapshot) alerts and marks the version; new findings are reported; an image that
cannot be pulled twice in a row alerts. Run it where registry credentials are (docker
config), with a runner or admin token. -o json prints each pass's results.

With --once the exit code is 2 also when the server could not be asked or refused a
result (the results it took are printed first).

` + clientHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), g, opts, cmd.OutOrStdout())
		},
	}
	co.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&opts.once, "once", false, "one pass, then exit (a CI job); default: every --interval")
	f.DurationVar(&opts.interval, "interval", 24*time.Hour, "time between passes when not --once")
	f.BoolVar(&opts.insecure, "insecure", false, "pull over plain HTTP and unverified TLS (test registries)")
	f.StringVar(&opts.tempDir, "temp-dir", "", "where image layers are unpacked (default $TMPDIR)")
	f.StringVar(&opts.cacheDir, "cache-dir", source.DefaultCacheDir(), `where layers are kept between passes, by digest ("" = none: every pass pulls every layer)`)

	list := &verifyListOptions{clientOptions: co}
	listCmd := &cobra.Command{
		Use:   "list [--label LABEL]",
		Short: "Show the last verification of every live version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerifyList(cmd.Context(), list, cmd.OutOrStdout())
		},
	}
	listCmd.Flags().StringVar(&list.label, "label", "", "only this image")
	cmd.AddCommand(listCmd)
	return cmd
}

func runVerify(ctx context.Context, g *globalOptions, opts *verifyOptions, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	w := verify.New(c, verify.Options{Insecure: opts.insecure, TempDir: opts.tempDir, CacheDir: opts.cacheDir, ScannerVersion: scannerVersion(), Logger: g.logger()})
	if !opts.once {
		return w.Run(ctx, opts.interval)
	}
	pass, err := w.Once(ctx)
	if eerr := opts.emit(stdout, pass, verificationTable(pass.Results...)); eerr != nil {
		return eerr
	}
	if err != nil {
		return fmt.Errorf("verification pass: %w", err)
	}
	return nil
}

func runVerifyList(ctx context.Context, opts *verifyListOptions, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	l, err := c.Verifications(ctx, opts.label)
	if err != nil {
		return err
	}
	return opts.emit(stdout, l, verificationTable(l.Items...))
}

func verificationTable(vs ...rollout.Verification) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "LABEL\tVERSION\tLIVE\tRESULT\tCHECKED\tLAST SUCCESS\tDETAIL")
		for _, v := range vs {
			detail := v.Error
			switch {
			case v.Drift != nil:
				detail = strings.Join(v.Drift.Reasons, "; ")
			case len(v.NewFindings) > 0:
				ids := make([]string, len(v.NewFindings))
				for i, f := range v.NewFindings {
					ids[i] = f.ID
				}
				detail = "fails now: " + strings.Join(ids, ", ")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Label, v.Version, dash(strings.Join(v.Live, ",")), v.Result,
				ts(v.CheckedAt), ts(v.LastSuccessAt), dash(detail))
		}
	}
}

// pushRef is the image reference of `push --ref` ("" is none), with the
// scan options read from the pushed snapshot.
func pushRef(ctx context.Context, ref string, snapJSON []byte, insecure bool) (*rollout.ImageRef, error) {
	if ref == "" {
		return nil, nil
	}
	snap, err := snapshot.Decode(bytes.NewReader(snapJSON))
	if err != nil {
		snap = nil // the server refuses a bad snapshot with a better message
	}
	img, err := verify.Reference(ctx, ref, snap, verify.RefOptions{Insecure: insecure})
	if err != nil {
		return nil, err
	}
	return &img, nil
}
