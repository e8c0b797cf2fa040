package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// imagegate resolve

type resolveOptions struct {
	*clientOptions
	org, run string
}

func newResolveCmd(g *globalOptions) *cobra.Command {
	ro := &resolveOptions{clientOptions: &clientOptions{}}
	cmd := &cobra.Command{
		Use:   "resolve --org ORG LABEL",
		Short: "Ask which version of LABEL a job of ORG gets, and why",
		Long:  clientHelp,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runResolve(cmd.Context(), ro, args, cmd.OutOrStdout())
		},
	}
	ro.register(cmd)
	cmd.Flags().StringVar(&ro.org, "org", "", "the organisation (required)")
	cmd.Flags().StringVar(&ro.run, "run", "", "workflow run id: every job of a run gets the same version")
	return cmd
}

func runResolve(ctx context.Context, opts *resolveOptions, args []string, stdout io.Writer) error {
	if opts.org == "" {
		return usageErrorf("--org is required")
	}
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	res, err := c.Resolve(ctx, opts.org, args[0], opts.run)
	if err != nil {
		return err
	}
	return opts.emit(stdout, res, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "LABEL\tVERSION\tREASON\tRING\tROLLOUT\tDETAIL")
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", res.Label, res.Version, res.Reason, res.Ring, dash(res.RolloutID), dash(res.Detail))
	})
}
