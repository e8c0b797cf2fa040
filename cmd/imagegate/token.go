package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// imagegate token create|list|revoke|rotate

type tokenCreateOptions struct {
	*clientOptions
	role, expires string
	now           func() time.Time // what --expires 720h counts from
}

type tokenReasonOptions struct {
	*clientOptions
	reason string
}

type tokenListOptions struct {
	*clientOptions
	page rollout.Page
}

func newTokenCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	cmd := &cobra.Command{Use: "token", Short: "Create, list, revoke and rotate API tokens (admin)", Long: clientHelp}
	co.register(cmd)

	cro := &tokenCreateOptions{clientOptions: co, now: time.Now}
	create := &cobra.Command{
		Use:   "create NAME --role admin|runner|org:ID [--expires 720h|RFC3339]",
		Short: "Create a token; its secret is printed this once only",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenCreate(cmd.Context(), cro, args, cmd.OutOrStdout())
		},
	}
	create.Flags().StringVar(&cro.role, "role", "", "admin, runner or org:<id> (required)")
	create.Flags().StringVar(&cro.expires, "expires", "", "when the token stops working: a duration from now (720h) or an RFC 3339 time (default: never)")

	lo := &tokenListOptions{clientOptions: co}
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens: ids, names, roles, expiry, last use, revocation (never a secret)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenList(cmd.Context(), lo, args, cmd.OutOrStdout())
		},
	}
	list.Flags().IntVar(&lo.page.Limit, "limit", 0, "at most this many (server default 100)")
	list.Flags().StringVar(&lo.page.After, "after", "", "the next cursor of a previous page")

	ro := &tokenReasonOptions{clientOptions: co}
	revoke := &cobra.Command{
		Use:   "revoke ID [--reason TEXT]",
		Short: "Revoke a token for good (at once on this server, within the token cache TTL on others)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenRevoke(cmd.Context(), ro, args, cmd.OutOrStdout())
		},
	}
	revoke.Flags().StringVar(&ro.reason, "reason", "", "why, for the audit log")

	rto := &tokenReasonOptions{clientOptions: co}
	rotate := &cobra.Command{
		Use:   "rotate ID [--reason TEXT]",
		Short: "Replace a token by a new one of the same name and role and revoke the old (the bootstrap admin token: then set IMAGEGATE_ADMIN_TOKEN to the new secret)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenRotate(cmd.Context(), rto, args, cmd.OutOrStdout())
		},
	}
	rotate.Flags().StringVar(&rto.reason, "reason", "", "why, for the audit log")
	cmd.AddCommand(create, list, revoke, rotate)
	return cmd
}

func tokenTable(tokens ...rollout.Token) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tROLE\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
		for _, t := range tokens {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.LastUsedAt), ts(t.RevokedAt))
		}
	}
}

func secretTable(t api.CreateTokenResponse) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tROLE\tEXPIRES")
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, ts(t.ExpiresAt))
		fmt.Fprintf(w, "\nsecret (shown only this once; keep it safe):\n%s\n", t.Token)
	}
}

func runTokenCreate(ctx context.Context, opts *tokenCreateOptions, args []string, stdout io.Writer) error {
	if opts.role == "" {
		return usageErrorf("--role is required: admin, runner or org:<id>")
	}
	req := api.CreateTokenRequest{Name: args[0], Role: opts.role}
	if opts.expires != "" {
		exp, err := parseExpiry(opts.expires, opts.now())
		if err != nil {
			return err
		}
		req.ExpiresAt = exp
	}
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.NewToken(ctx, req)
	if err != nil {
		return err
	}
	return opts.emit(stdout, t, secretTable(t))
}

func runTokenList(ctx context.Context, opts *tokenListOptions, _ []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	l, err := c.Tokens(ctx, opts.page)
	if err != nil {
		return err
	}
	return opts.emit(stdout, l, tokenTable(l.Items...))
}

func runTokenRevoke(ctx context.Context, opts *tokenReasonOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.RevokeToken(ctx, args[0], opts.reason)
	if err != nil {
		return err
	}
	return opts.emit(stdout, t, tokenTable(t))
}

func runTokenRotate(ctx context.Context, opts *tokenReasonOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	t, err := c.RotateToken(ctx, args[0], opts.reason)
	if err != nil {
		return err
	}
	return opts.emit(stdout, t, secretTable(t))
}
