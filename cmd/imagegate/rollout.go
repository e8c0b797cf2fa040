package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

// imagegate rollout start|status|list|pause|resume|promote|halt|rollback

type rolloutStartOptions struct {
	*clientOptions
	expedited    bool
	bake         map[string]string
	force        bool
	reason       string
	autoRollback bool
}

type rolloutListOptions struct {
	*clientOptions
	label, states string
	page          rollout.Page
}

// rolloutActionOptions serve the commands that steer one rollout.
type rolloutActionOptions struct {
	*clientOptions
	action string // apiclient.ActionPause, ...
	reason string
}

func newRolloutCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	cmd := &cobra.Command{Use: "rollout", Short: "Start, watch and steer rollouts of image versions through the rings", Long: clientHelp}
	co.register(cmd)

	so := &rolloutStartOptions{clientOptions: co}
	start := &cobra.Command{
		Use:   "start LABEL VERSION",
		Short: "Roll a version out through the rings (a running, paused or halted rollout of the image is superseded)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutStart(cmd.Context(), so, args, cmd.OutOrStdout())
		},
	}
	start.Flags().BoolVar(&so.expedited, "expedited", false, "hotfix: shorter bake times (policies.expeditedBakeFactor); every gate still applies")
	start.Flags().StringToStringVar(&so.bake, "bake", nil, "bake time per ring name, e.g. --bake canary=30m,early=2h")
	start.Flags().BoolVar(&so.force, "force", false, "roll out a version whose gate failed (needs --reason)")
	start.Flags().StringVar(&so.reason, "reason", "", "why it is forced (kept in the audit log)")
	start.Flags().BoolVar(&so.autoRollback, "auto-rollback", false, "roll back by itself instead of halting when a ring turns unhealthy")

	status := &cobra.Command{
		Use:   "status LABEL",
		Short: "The image's current rollout: per ring the intended version and what was actually served",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutStatus(cmd.Context(), co, args, cmd.OutOrStdout())
		},
	}

	lo := &rolloutListOptions{clientOptions: co}
	list := &cobra.Command{
		Use:   "list",
		Short: "List rollouts, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutList(cmd.Context(), lo, args, cmd.OutOrStdout())
		},
	}
	list.Flags().StringVar(&lo.label, "label", "", "only this image")
	list.Flags().StringVar(&lo.states, "state", "", "only these states, comma-separated (pending,baking,paused,halted,rolled-back,superseded,completed)")
	list.Flags().IntVar(&lo.page.Limit, "limit", 0, "at most this many (server default 100)")
	list.Flags().StringVar(&lo.page.After, "after", "", "the next cursor of a previous page")
	cmd.AddCommand(start, status, list)
	cmd.AddCommand(newRolloutAnalysisCmd(co))

	for _, a := range []struct{ name, short string }{
		{apiclient.ActionPause, "Hold a rollout where it is"},
		{apiclient.ActionResume, "Let a paused or halted rollout continue"},
		{apiclient.ActionPromote, "Approve leaving the current ring now (health still gates)"},
		{apiclient.ActionHalt, "Stop a rollout where it is (rings keep what they serve)"},
		{apiclient.ActionRollback, "Return every ring of the image to the previous version at once"},
	} {
		ao := &rolloutActionOptions{clientOptions: co, action: a.name}
		c := &cobra.Command{
			Use:   a.name + " ROLLOUT_ID|LABEL",
			Short: a.short + "; LABEL means the image's newest rollout",
			Args:  exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runRolloutAction(cmd.Context(), ao, args, cmd.OutOrStdout())
			},
		}
		c.Flags().StringVar(&ao.reason, "reason", "", "why (kept in the audit log)")
		cmd.AddCommand(c)
	}
	documentClient(cmd)
	return cmd
}

func rolloutTable(rs ...rollout.Rollout) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tLABEL\tVERSION\tFROM\tSTATE\tRING\tUPDATED\tREASON")
		for _, r := range rs {
			ring := "-"
			if r.Ring >= 0 && r.Ring < len(r.Rings) {
				ring = fmt.Sprintf("%d %s", r.Ring, r.Rings[r.Ring].Name)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Label, r.Version, dash(r.FromVersion), r.State, ring, ts(r.UpdatedAt), dash(r.Reason))
		}
	}
}

func runRolloutStart(ctx context.Context, opts *rolloutStartOptions, args []string, stdout io.Writer) error {
	if opts.force && strings.TrimSpace(opts.reason) == "" {
		return usageErrorf("--force needs --reason: say why a failed gate is overridden")
	}
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	r, err := c.StartRollout(ctx, api.StartRolloutRequest{
		Label: args[0], Version: args[1], Expedited: opts.expedited, BakeTimes: opts.bake,
		Force: opts.force, ForceReason: opts.reason, AutoRollback: opts.autoRollback,
	})
	if err != nil {
		return err
	}
	return opts.emit(stdout, r, rolloutTable(r))
}

// runRolloutStatus needs no options beyond the shared ones.
func runRolloutStatus(ctx context.Context, opts *clientOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx, args[0])
	if err != nil {
		return err
	}
	return opts.emit(stdout, st, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "label\t%s\ndefault\t%s\n", st.Label, dash(st.Default))
		if r := st.Rollout; r != nil {
			fmt.Fprintf(w, "rollout\t%s: %s -> %s, %s in ring %d\n", r.ID, dash(r.FromVersion), r.Version, r.State, r.Ring)
		}
		if st.Waiting != "" {
			fmt.Fprintf(w, "waiting\t%s\n", st.Waiting)
		}
		fmt.Fprintf(w, "fully served\t%v (old version served %d times since %s)\n\n", st.FullyServed, st.OldServed, ts(st.ObservedSince))
		fmt.Fprintln(w, "RING\tNAME\tINTENDED\tCONTROL\tSERVED")
		for _, r := range st.Rings {
			var served []string
			for v, n := range r.Served {
				served = append(served, fmt.Sprintf("%s=%d", v, n))
			}
			slices.Sort(served)
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", r.Index, r.Name, r.Intended, dash(r.Control), dash(strings.Join(served, " ")))
		}
	})
}

func runRolloutList(ctx context.Context, opts *rolloutListOptions, _ []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	var ss []string
	if opts.states != "" {
		ss = strings.Split(opts.states, ",")
	}
	l, err := c.ListRollouts(ctx, opts.label, ss, opts.page)
	if err != nil {
		return err
	}
	return opts.emit(stdout, l, rolloutTable(l.Items...))
}

// runRolloutAction acts on a rollout named by ID, or by its image label
// (the newest rollout of that label): "imagegate rollout rollback
// ubuntu-22.04" is the one call an incident needs.
func runRolloutAction(ctx context.Context, opts *rolloutActionOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	id := args[0]
	if _, err := c.Rollout(ctx, id); errors.Is(err, rollout.ErrNotFound) {
		l, lerr := c.ListRollouts(ctx, id, nil, rollout.Page{Limit: 1})
		if lerr != nil {
			return lerr
		}
		if len(l.Items) == 0 {
			return fmt.Errorf("%q is neither a rollout ID nor an image with rollouts (see imagegate rollout list)", id)
		}
		id = l.Items[0].ID
	} else if err != nil {
		return err
	}
	r, err := c.Act(ctx, id, opts.action, opts.reason)
	if err != nil {
		return err
	}
	return opts.emit(stdout, r, rolloutTable(r))
}
