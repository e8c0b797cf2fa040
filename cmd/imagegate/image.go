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

// imagegate image push|list|revoke

type versionPushOptions struct {
	*clientOptions
	snapshot, checkReport string
	ref                   string // --ref: see verify.Reference
	refInsecure           bool
}

type versionListOptions struct {
	*clientOptions
	page rollout.Page
}

type versionRevokeOptions struct {
	*clientOptions
	reason string
}

func newImageCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	cmd := &cobra.Command{Use: "image", Short: "Register, list and revoke image versions on a server", Long: clientHelp}
	co.register(cmd)
	cmd.AddCommand(imageVersionCmds(co, "")...)
	documentClient(cmd)
	return cmd
}

// imageVersionCmds are push, list and revoke over co. With moved set they
// are the old spelling under "imagegate version" (before that command
// printed imagegate's own version): hidden, working, and saying on stderr
// what to type instead, for one release.
func imageVersionCmds(co *clientOptions, moved string) []*cobra.Command {
	push := &versionPushOptions{clientOptions: co}
	pushCmd := &cobra.Command{
		Use:   "push LABEL VERSION --snapshot FILE [--check-report FILE]",
		Short: "Register a version with its snapshot and `imagegate check -o json` report",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersionPush(cmd.Context(), push, args, cmd.OutOrStdout())
		},
	}
	pushCmd.Flags().StringVar(&push.snapshot, "snapshot", "", "snapshot JSON from imagegate scan")
	pushCmd.Flags().StringVar(&push.checkReport, "check-report", "", "report JSON from imagegate check -o json (the gate verdict); without it the gate is unknown")
	pushCmd.Flags().StringVar(&push.ref, "ref", "", "the image the version was built as, registry:HOST/REPO@sha256:… or registry:HOST/REPO:TAG (its digest is recorded now), for imagegate verify")
	pushCmd.Flags().BoolVar(&push.refInsecure, "insecure", false, "resolve a --ref tag over plain HTTP (test registries)")

	list := &versionListOptions{clientOptions: co}
	listCmd := &cobra.Command{
		Use:   "list LABEL",
		Short: "List versions of an image, newest first",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersionList(cmd.Context(), list, args, cmd.OutOrStdout())
		},
	}
	listCmd.Flags().IntVar(&list.page.Limit, "limit", 0, "at most this many (server default 100)")
	listCmd.Flags().StringVar(&list.page.After, "after", "", "the next cursor of a previous page")

	revoke := &versionRevokeOptions{clientOptions: co}
	revokeCmd := &cobra.Command{
		Use:   "revoke LABEL VERSION --reason TEXT",
		Short: "Revoke a version: it is never served again, unless a pin overrides with a reason",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersionRevoke(cmd.Context(), revoke, args, cmd.OutOrStdout())
		},
	}
	revokeCmd.Flags().StringVar(&revoke.reason, "reason", "", "why (kept in the audit log; required)")
	cmds := []*cobra.Command{pushCmd, listCmd, revokeCmd}
	if moved != "" {
		for _, c := range cmds {
			c.Hidden = true
			co.register(c)
			c.PreRun = func(c *cobra.Command, _ []string) {
				fmt.Fprintf(c.ErrOrStderr(), "imagegate: %q is now %q; the old spelling goes away in the next release\n", "imagegate version "+c.Name(), moved+" "+c.Name())
			}
		}
	}
	return cmds
}

func versionTable(vs ...rollout.Version) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "LABEL\tVERSION\tGATE\tREVOKED\tCREATED")
		for _, v := range vs {
			revoked := "-"
			if v.Revoked {
				revoked = "yes: " + v.RevokedReason
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", v.Label, v.Version, v.Gate, revoked, ts(v.CreatedAt))
		}
	}
}

func runVersionPush(ctx context.Context, opts *versionPushOptions, args []string, stdout io.Writer) error {
	if opts.snapshot == "" {
		return usageErrorf("--snapshot FILE is required (the JSON of imagegate scan)")
	}
	snap, err := readJSONFile(opts.snapshot, "snapshot")
	if err != nil {
		return err
	}
	report, err := readJSONFile(opts.checkReport, "check report")
	if err != nil {
		return err
	}
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	req := api.PushVersionRequest{Version: args[1], Snapshot: snap, CheckReport: report}
	if req.Image, err = pushRef(ctx, opts.ref, snap, opts.refInsecure); err != nil {
		return err
	}
	v, err := c.PushVersion(ctx, args[0], req)
	if err != nil {
		return err
	}
	return opts.emit(stdout, v, versionTable(v))
}

func runVersionList(ctx context.Context, opts *versionListOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	l, err := c.Versions(ctx, args[0], opts.page)
	if err != nil {
		return err
	}
	return opts.emit(stdout, l, versionTable(l.Items...))
}

func runVersionRevoke(ctx context.Context, opts *versionRevokeOptions, args []string, stdout io.Writer) error {
	if strings.TrimSpace(opts.reason) == "" {
		return usageErrorf("--reason is required: say why the version is revoked")
	}
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	v, err := c.RevokeVersion(ctx, args[0], args[1], opts.reason)
	if err != nil {
		return err
	}
	return opts.emit(stdout, v, versionTable(v))
}
