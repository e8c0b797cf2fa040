package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// imagegate pin set|clear|list

type pinSetOptions struct {
	*clientOptions
	reason, expires, owner string
	overrideRevoked        bool
	now                    func() time.Time // what --expires 72h counts from
}

type pinListOptions struct {
	*clientOptions
	org, label string
	page       rollout.Page
}

func newPinCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	cmd := &cobra.Command{Use: "pin", Short: "Pin an organisation's image to a version, until an expiry", Long: clientHelp}
	co.register(cmd)

	so := &pinSetOptions{clientOptions: co, now: time.Now}
	set := &cobra.Command{
		Use:   "set ORG LABEL VERSION --reason TEXT --expires 72h|RFC3339",
		Short: "Pin ORG's LABEL to VERSION (an org token may pin only its own organisation)",
		Args:  exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPinSet(cmd.Context(), so, args, cmd.OutOrStdout())
		},
	}
	set.Flags().StringVar(&so.reason, "reason", "", "why (required)")
	set.Flags().StringVar(&so.expires, "expires", "", "when the pin lapses: a duration from now (72h) or an RFC 3339 time (required)")
	set.Flags().StringVar(&so.owner, "owner", "", "who to ask about the pin (default: the token's name)")
	set.Flags().BoolVar(&so.overrideRevoked, "override-revoked", false, "pin even a revoked version; the reason is shown with every resolve")

	clearCmd := &cobra.Command{
		Use:   "clear ORG LABEL",
		Short: "Remove ORG's pin of LABEL",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPinClear(cmd.Context(), co, args, cmd.OutOrStdout())
		},
	}

	lo := &pinListOptions{clientOptions: co}
	list := &cobra.Command{
		Use:   "list",
		Short: "List pins in force, flagging those about to expire",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPinList(cmd.Context(), lo, args, cmd.OutOrStdout())
		},
	}
	list.Flags().StringVar(&lo.org, "org", "", "only this organisation (an org token sees its own)")
	list.Flags().StringVar(&lo.label, "label", "", "only this image")
	list.Flags().IntVar(&lo.page.Limit, "limit", 0, "at most this many (server default 100)")
	list.Flags().StringVar(&lo.page.After, "after", "", "the next cursor of a previous page")
	cmd.AddCommand(set, clearCmd, list)
	documentClient(cmd)
	return cmd
}

// parseExpiry takes "72h" (from now) or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usageErrorf("--expires %s: must be in the future", s)
		}
		return now.Add(d).UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageErrorf("--expires %q: want a duration such as 72h or a time such as 2026-05-01T00:00:00Z", s)
	}
	return t, nil
}

func pinTable(ps ...rollout.PinView) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ORG\tLABEL\tVERSION\tEXPIRES\tOWNER\tREASON")
		for _, p := range ps {
			exp := ts(p.ExpiresAt)
			switch {
			case p.Expired:
				exp += " (expired)"
			case p.ExpiresSoon:
				exp += " (expires soon)"
			}
			reason := p.Reason
			if p.OverrideRevoked {
				reason += " [overrides revocation]"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Org, p.Label, p.Version, exp, p.Owner, reason)
		}
	}
}

func runPinSet(ctx context.Context, opts *pinSetOptions, args []string, stdout io.Writer) error {
	if strings.TrimSpace(opts.reason) == "" || opts.expires == "" {
		return usageErrorf("--reason and --expires are required: a pin says why and until when")
	}
	exp, err := parseExpiry(opts.expires, opts.now())
	if err != nil {
		return err
	}
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	p, err := c.SetPin(ctx, args[0], args[1], api.SetPinRequest{
		Version: args[2], Reason: opts.reason, ExpiresAt: exp, Owner: opts.owner, OverrideRevoked: opts.overrideRevoked,
	})
	if err != nil {
		return err
	}
	return opts.emit(stdout, p, pinTable(rollout.PinView{Pin: p}))
}

// runPinClear needs no options beyond the shared ones.
func runPinClear(ctx context.Context, opts *clientOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	if err := c.ClearPin(ctx, args[0], args[1]); err != nil {
		return err
	}
	out := map[string]string{"org": args[0], "label": args[1], "status": "cleared"}
	return opts.emit(stdout, out, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "pin of %s on %s cleared\n", args[0], args[1])
	})
}

func runPinList(ctx context.Context, opts *pinListOptions, _ []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	l, err := c.ListPins(ctx, opts.org, opts.label, opts.page)
	if err != nil {
		return err
	}
	return opts.emit(stdout, l, pinTable(l.Items...))
}
