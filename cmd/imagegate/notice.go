package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// imagegate subscription add|list|delete, imagegate org target set|show|clear, imagegate org upcoming

type subscriptionAddOptions struct {
	*clientOptions
	org, url, format string
	orgTarget        bool
	filters          []string
}

type subscriptionListOptions struct {
	*clientOptions
	org, label string
	page       rollout.Page
}

type subscriptionDeleteOptions struct {
	*clientOptions
	org string
}

type orgTargetSetOptions struct {
	*clientOptions
	url, format string
}

func newSubscriptionCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	cmd := &cobra.Command{Use: "subscription", Short: "Subscribe an organisation to change notices of an image", Long: clientHelp}
	co.register(cmd)

	ao := &subscriptionAddOptions{clientOptions: co}
	add := &cobra.Command{
		Use:   "add LABEL (--url URL [--format json|slack|teams] | --org-target) [--filter GLOB]... [--org ORG]",
		Short: "Subscribe to LABEL's change notices: a webhook, or the organisation's alert target",
		Long: `Subscribes an organisation (the org token's; an admin names --org) to LABEL's change
notices: when a rollout of LABEL starts, a notice with the release notes and the matching
entries goes to --url, or with --org-target to the organisation's alert target (imagegate
org target set), if an entry of the version's diff matches a --filter (diff identity globs
as in a changes file: tool/php*, runtime/python@3.7*; none: every rollout).

` + clientHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSubscriptionAdd(cmd.Context(), ao, args, cmd.OutOrStdout())
		},
	}
	add.Flags().StringVar(&ao.org, "org", "", "the organisation (implied by an org token)")
	add.Flags().StringVar(&ao.url, "url", "", "the webhook notices are POSTed to")
	add.Flags().StringVar(&ao.format, "format", "", "the webhook's format: json (default), slack or teams")
	add.Flags().BoolVar(&ao.orgTarget, "org-target", false, "send to the organisation's alert target instead of --url")
	add.Flags().StringArrayVar(&ao.filters, "filter", nil, "only rollouts whose diff has a matching entry (repeatable)")

	lo := &subscriptionListOptions{clientOptions: co}
	list := &cobra.Command{
		Use:   "list [--org ORG] [--label LABEL]",
		Short: "List subscriptions (an org token sees its own), webhook URLs redacted",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSubscriptionList(cmd.Context(), lo, args, cmd.OutOrStdout())
		},
	}
	list.Flags().StringVar(&lo.org, "org", "", "only this organisation")
	list.Flags().StringVar(&lo.label, "label", "", "only this image")
	list.Flags().IntVar(&lo.page.Limit, "limit", 0, "at most this many (server default 100)")
	list.Flags().StringVar(&lo.page.After, "after", "", "the next cursor of a previous page")

	do := &subscriptionDeleteOptions{clientOptions: co}
	del := &cobra.Command{
		Use:   "delete ID [--org ORG]",
		Short: "Delete one of the organisation's subscriptions",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSubscriptionDelete(cmd.Context(), do, args, cmd.OutOrStdout())
		},
	}
	del.Flags().StringVar(&do.org, "org", "", "the organisation (implied by an org token)")
	cmd.AddCommand(add, list, del)
	documentClient(cmd)
	return cmd
}

func newOrgCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	cmd := &cobra.Command{Use: "org", Short: "An organisation's alert target and upcoming changes", Long: clientHelp}
	co.register(cmd)

	target := &cobra.Command{Use: "target", Short: "The organisation's alert target: where its --org-target subscriptions are sent"}
	so := &orgTargetSetOptions{clientOptions: co}
	set := &cobra.Command{
		Use:   "set ORG --url URL [--format json|slack|teams]",
		Short: "Set ORG's alert target, replacing the previous one (an org token sets only its own)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOrgTargetSet(cmd.Context(), so, args, cmd.OutOrStdout())
		},
	}
	set.Flags().StringVar(&so.url, "url", "", "the webhook (required)")
	set.Flags().StringVar(&so.format, "format", "", "its format: json (default), slack or teams")
	show := &cobra.Command{
		Use:   "show ORG",
		Short: "Show ORG's alert target, its URL redacted",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOrgTargetShow(cmd.Context(), co, args, cmd.OutOrStdout())
		},
	}
	clearCmd := &cobra.Command{
		Use:   "clear ORG",
		Short: "Remove ORG's alert target (its --org-target subscriptions are skipped until one is set)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOrgTargetClear(cmd.Context(), co, args, cmd.OutOrStdout())
		},
	}
	target.AddCommand(set, show, clearCmd)

	upcoming := &cobra.Command{
		Use:   "upcoming ORG",
		Short: "What ORG's subscriptions are told about the rollouts under way, and when each reaches it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOrgUpcoming(cmd.Context(), co, args, cmd.OutOrStdout())
		},
	}
	cmd.AddCommand(target, upcoming)
	documentClient(cmd)
	return cmd
}

func subscriptionTable(ss ...rollout.Subscription) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tORG\tLABEL\tTARGET\tFORMAT\tFILTERS")
		for _, s := range ss {
			target := s.URL
			if s.OrgTarget {
				target = "org target"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Org, s.Label, target, dash(s.Format), dash(strings.Join(s.Filters, ",")))
		}
	}
}

func runSubscriptionAdd(ctx context.Context, opts *subscriptionAddOptions, args []string, stdout io.Writer) error {
	if (opts.url == "") == !opts.orgTarget {
		return usageErrorf("give --url URL or --org-target (the organisation's alert target), not both")
	}
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	s, err := c.Subscribe(ctx, api.SubscribeRequest{Org: opts.org, Label: args[0], URL: opts.url, Format: opts.format,
		OrgTarget: opts.orgTarget, Filters: opts.filters})
	if err != nil {
		return err
	}
	return opts.emit(stdout, s, subscriptionTable(s))
}

func runSubscriptionList(ctx context.Context, opts *subscriptionListOptions, _ []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	l, err := c.Subscriptions(ctx, opts.org, opts.label, opts.page)
	if err != nil {
		return err
	}
	return opts.emit(stdout, l, func(w *tabwriter.Writer) {
		subscriptionTable(l.Items...)(w)
		if l.Next != "" {
			fmt.Fprintf(w, "\nmore: --after %s\n", l.Next)
		}
	})
}

func runSubscriptionDelete(ctx context.Context, opts *subscriptionDeleteOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	if err := c.Unsubscribe(ctx, opts.org, args[0]); err != nil {
		return err
	}
	out := map[string]string{"id": args[0], "status": "deleted"}
	return opts.emit(stdout, out, func(w *tabwriter.Writer) { fmt.Fprintf(w, "subscription %s deleted\n", args[0]) })
}

func orgTargetTable(t rollout.OrgTarget) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ORG\tURL\tFORMAT\tUPDATED\tBY")
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Org, t.URL, dash(t.Format), ts(t.UpdatedAt), t.UpdatedBy)
	}
}

func runOrgTargetSet(ctx context.Context, opts *orgTargetSetOptions, args []string, stdout io.Writer) error {
	if opts.url == "" {
		return usageErrorf("--url is required: the webhook the organisation's notices go to")
	}
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.SetOrgTarget(ctx, args[0], api.OrgTargetRequest{URL: opts.url, Format: opts.format})
	if err != nil {
		return err
	}
	return opts.emit(stdout, t, orgTargetTable(t))
}

func runOrgTargetShow(ctx context.Context, opts *clientOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.OrgTarget(ctx, args[0])
	if err != nil {
		return err
	}
	return opts.emit(stdout, t, orgTargetTable(t))
}

func runOrgTargetClear(ctx context.Context, opts *clientOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	if err := c.ClearOrgTarget(ctx, args[0]); err != nil {
		return err
	}
	out := map[string]string{"org": args[0], "status": "cleared"}
	return opts.emit(stdout, out, func(w *tabwriter.Writer) { fmt.Fprintf(w, "alert target of %s cleared\n", args[0]) })
}

func runOrgUpcoming(ctx context.Context, opts *clientOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	ns, err := c.Upcoming(ctx, args[0])
	if err != nil {
		return err
	}
	return opts.emit(stdout, api.List[rollout.ChangeNotice]{Items: ns}, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "LABEL\tVERSION\tFROM\tRING\tREACHES\tENTRIES")
		for _, n := range ns {
			reaches := ts(n.ReachesAt)
			if n.Reached {
				reaches += " (reached)"
			}
			var entries []string
			for _, e := range n.Entries {
				entries = append(entries, e.Class+" "+e.ID)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d (%s)\t%s\t%s\n", n.Label, n.Version, dash(n.FromVersion), n.Ring, n.RingName, reaches, dash(strings.Join(entries, ", ")))
		}
	})
}
