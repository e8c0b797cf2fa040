package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

const clientHelp = `Talks to an imagegate server: --server URL or IMAGEGATE_SERVER, with the
token in IMAGEGATE_TOKEN. --server @FILE reads the URL from FILE (as written by
serve --addr-file), waiting up to 15s for it to appear.
Output: -o json (the API's JSON, the default when stdout is not a terminal) or -o table.

Exit codes:
  0  success
  2  usage error, or the server refused (unknown, conflict, forbidden, ...)`

// clientOptions are the flags every client command shares.
type clientOptions struct {
	server string
	output string
	getenv func(string) string
}

func (o *clientOptions) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.server, "server", "", "server URL (default $IMAGEGATE_SERVER); @FILE reads it from FILE")
	f.StringVarP(&o.output, "output", "o", "", "output format: json or table (default json unless stdout is a terminal)")
}

func (o *clientOptions) client(ctx context.Context) (*apiclient.Client, error) {
	getenv := o.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	url := o.server
	if url == "" {
		url = getenv("IMAGEGATE_SERVER")
	}
	if file, ok := strings.CutPrefix(url, "@"); ok {
		var err error
		if url, err = waitForURL(ctx, file, 15*time.Second); err != nil {
			return nil, err
		}
	}
	return apiclient.New(url, getenv("IMAGEGATE_TOKEN"), &http.Client{Timeout: 60 * time.Second})
}

// waitForURL reads a server URL from file, waiting for a server that is
// still starting to write it.
func waitForURL(ctx context.Context, file string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(file)
		if url := strings.TrimSpace(string(b)); err == nil && url != "" {
			return url, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no server URL in %s after %v (is imagegate serve --addr-file %s running?)", file, wait, file)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (o *clientOptions) format(stdout io.Writer) (string, error) {
	switch o.output {
	case "":
		return defaultFormat(stdout, ""), nil
	case "json", "table":
		return o.output, nil
	}
	return "", fmt.Errorf("-o %q: want json or table", o.output)
}

// emit writes v as indented JSON or, for people, as the table that table
// writes.
func (o *clientOptions) emit(stdout io.Writer, v any, table func(w *tabwriter.Writer)) error {
	format, err := o.format(stdout)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---- imagegate version ----

type versionPushOptions struct {
	snapshot, checkReport string
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	cmd := &cobra.Command{Use: "version", Short: "Register, list and revoke image versions on a server", Long: clientHelp}
	co.register(cmd)

	push := &versionPushOptions{}
	pushCmd := &cobra.Command{
		Use:   "push LABEL VERSION --snapshot FILE [--check-report FILE]",
		Short: "Register a version with its snapshot and `imagegate check -o json` report",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersionPush(cmd.Context(), co, push, args, cmd.OutOrStdout())
		},
	}
	pushCmd.Flags().StringVar(&push.snapshot, "snapshot", "", "snapshot JSON from imagegate scan")
	pushCmd.Flags().StringVar(&push.checkReport, "check-report", "", "report JSON from imagegate check -o json (the gate verdict); without it the gate is unknown")

	var page rollout.Page
	listCmd := &cobra.Command{
		Use:   "list LABEL",
		Short: "List versions of an image, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersionList(cmd.Context(), co, page, args, cmd.OutOrStdout())
		},
	}
	listCmd.Flags().IntVar(&page.Limit, "limit", 0, "at most this many (server default 100)")
	listCmd.Flags().StringVar(&page.After, "after", "", "the next cursor of a previous page")

	var reason string
	revokeCmd := &cobra.Command{
		Use:   "revoke LABEL VERSION --reason TEXT",
		Short: "Revoke a version: it is never served again, unless a pin overrides with a reason",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersionRevoke(cmd.Context(), co, reason, args, cmd.OutOrStdout())
		},
	}
	revokeCmd.Flags().StringVar(&reason, "reason", "", "why (kept in the audit log; required)")
	cmd.AddCommand(pushCmd, listCmd, revokeCmd)
	return cmd
}

func readJSONFile(path, what string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s %s is not JSON", what, path)
	}
	return b, nil
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

func runVersionPush(ctx context.Context, co *clientOptions, opts *versionPushOptions, args []string, stdout io.Writer) error {
	if opts.snapshot == "" {
		return errors.New("--snapshot FILE is required (the JSON of imagegate scan)")
	}
	snap, err := readJSONFile(opts.snapshot, "snapshot")
	if err != nil {
		return err
	}
	report, err := readJSONFile(opts.checkReport, "check report")
	if err != nil {
		return err
	}
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	v, err := c.PushVersion(ctx, args[0], api.PushVersionRequest{Version: args[1], Snapshot: snap, CheckReport: report})
	if err != nil {
		return err
	}
	return co.emit(stdout, v, versionTable(v))
}

func runVersionList(ctx context.Context, co *clientOptions, p rollout.Page, args []string, stdout io.Writer) error {
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	l, err := c.Versions(ctx, args[0], p)
	if err != nil {
		return err
	}
	return co.emit(stdout, l, versionTable(l.Items...))
}

func runVersionRevoke(ctx context.Context, co *clientOptions, reason string, args []string, stdout io.Writer) error {
	if strings.TrimSpace(reason) == "" {
		return errors.New("--reason is required: say why the version is revoked")
	}
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	v, err := c.RevokeVersion(ctx, args[0], args[1], reason)
	if err != nil {
		return err
	}
	return co.emit(stdout, v, versionTable(v))
}

// ---- imagegate rollout ----

type rolloutStartOptions struct {
	expedited    bool
	bake         map[string]string
	force        bool
	reason       string
	autoRollback bool
}

func newRolloutCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	cmd := &cobra.Command{Use: "rollout", Short: "Start, watch and steer rollouts of image versions through the rings", Long: clientHelp}
	co.register(cmd)

	so := &rolloutStartOptions{}
	start := &cobra.Command{
		Use:   "start LABEL VERSION",
		Short: "Roll a version out through the rings (a running, paused or halted rollout of the image is superseded)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutStart(cmd.Context(), co, so, args, cmd.OutOrStdout())
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
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutStatus(cmd.Context(), co, args, cmd.OutOrStdout())
		},
	}

	var label, states string
	var page rollout.Page
	list := &cobra.Command{
		Use:   "list",
		Short: "List rollouts, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutList(cmd.Context(), co, label, states, page, cmd.OutOrStdout())
		},
	}
	list.Flags().StringVar(&label, "label", "", "only this image")
	list.Flags().StringVar(&states, "state", "", "only these states, comma-separated (pending,baking,paused,halted,rolled-back,superseded,completed)")
	list.Flags().IntVar(&page.Limit, "limit", 0, "at most this many (server default 100)")
	list.Flags().StringVar(&page.After, "after", "", "the next cursor of a previous page")
	cmd.AddCommand(start, status, list)

	for _, a := range []struct{ name, short string }{
		{apiclient.ActionPause, "Hold a rollout where it is"},
		{apiclient.ActionResume, "Let a paused or halted rollout continue"},
		{apiclient.ActionPromote, "Approve leaving the current ring now (health still gates)"},
		{apiclient.ActionHalt, "Stop a rollout where it is (rings keep what they serve)"},
		{apiclient.ActionRollback, "Return every ring of the image to the previous version at once"},
	} {
		var reason string
		action := a.name
		c := &cobra.Command{
			Use:   action + " ROLLOUT_ID|LABEL",
			Short: a.short + "; LABEL means the image's newest rollout",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runRolloutAction(cmd.Context(), co, action, reason, args, cmd.OutOrStdout())
			},
		}
		c.Flags().StringVar(&reason, "reason", "", "why (kept in the audit log)")
		cmd.AddCommand(c)
	}
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

func runRolloutStart(ctx context.Context, co *clientOptions, so *rolloutStartOptions, args []string, stdout io.Writer) error {
	if so.force && strings.TrimSpace(so.reason) == "" {
		return errors.New("--force needs --reason: say why a failed gate is overridden")
	}
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	r, err := c.StartRollout(ctx, api.StartRolloutRequest{
		Label: args[0], Version: args[1], Expedited: so.expedited, BakeTimes: so.bake,
		Force: so.force, ForceReason: so.reason, AutoRollback: so.autoRollback,
	})
	if err != nil {
		return err
	}
	return co.emit(stdout, r, rolloutTable(r))
}

func runRolloutStatus(ctx context.Context, co *clientOptions, args []string, stdout io.Writer) error {
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx, args[0])
	if err != nil {
		return err
	}
	return co.emit(stdout, st, func(w *tabwriter.Writer) {
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

func runRolloutList(ctx context.Context, co *clientOptions, label, states string, p rollout.Page, stdout io.Writer) error {
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	var ss []string
	if states != "" {
		ss = strings.Split(states, ",")
	}
	l, err := c.ListRollouts(ctx, label, ss, p)
	if err != nil {
		return err
	}
	return co.emit(stdout, l, rolloutTable(l.Items...))
}

// runRolloutAction acts on a rollout named by ID, or by its image label
// (the newest rollout of that label): "imagegate rollout rollback
// ubuntu-22.04" is the one call an incident needs.
func runRolloutAction(ctx context.Context, co *clientOptions, action, reason string, args []string, stdout io.Writer) error {
	c, err := co.client(ctx)
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
	r, err := c.Act(ctx, id, action, reason)
	if err != nil {
		return err
	}
	return co.emit(stdout, r, rolloutTable(r))
}

// ---- imagegate pin ----

type pinSetOptions struct {
	reason, expires, owner string
	overrideRevoked        bool
}

func newPinCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	cmd := &cobra.Command{Use: "pin", Short: "Pin an organisation's image to a version, until an expiry", Long: clientHelp}
	co.register(cmd)

	so := &pinSetOptions{}
	set := &cobra.Command{
		Use:   "set ORG LABEL VERSION --reason TEXT --expires 72h|RFC3339",
		Short: "Pin ORG's LABEL to VERSION (an org token may pin only its own organisation)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPinSet(cmd.Context(), co, so, time.Now(), args, cmd.OutOrStdout())
		},
	}
	set.Flags().StringVar(&so.reason, "reason", "", "why (required)")
	set.Flags().StringVar(&so.expires, "expires", "", "when the pin lapses: a duration from now (72h) or an RFC 3339 time (required)")
	set.Flags().StringVar(&so.owner, "owner", "", "who to ask about the pin (default: the token's name)")
	set.Flags().BoolVar(&so.overrideRevoked, "override-revoked", false, "pin even a revoked version; the reason is shown with every resolve")

	clearCmd := &cobra.Command{
		Use:   "clear ORG LABEL",
		Short: "Remove ORG's pin of LABEL",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPinClear(cmd.Context(), co, args, cmd.OutOrStdout())
		},
	}

	var org, label string
	var page rollout.Page
	list := &cobra.Command{
		Use:   "list",
		Short: "List pins in force, flagging those about to expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPinList(cmd.Context(), co, org, label, page, cmd.OutOrStdout())
		},
	}
	list.Flags().StringVar(&org, "org", "", "only this organisation (an org token sees its own)")
	list.Flags().StringVar(&label, "label", "", "only this image")
	list.Flags().IntVar(&page.Limit, "limit", 0, "at most this many (server default 100)")
	list.Flags().StringVar(&page.After, "after", "", "the next cursor of a previous page")
	cmd.AddCommand(set, clearCmd, list)
	return cmd
}

// parseExpiry takes "72h" (from now) or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--expires %s: must be in the future", s)
		}
		return now.Add(d).UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--expires %q: want a duration such as 72h or a time such as 2026-05-01T00:00:00Z", s)
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

func runPinSet(ctx context.Context, co *clientOptions, so *pinSetOptions, now time.Time, args []string, stdout io.Writer) error {
	if strings.TrimSpace(so.reason) == "" || so.expires == "" {
		return errors.New("--reason and --expires are required: a pin says why and until when")
	}
	exp, err := parseExpiry(so.expires, now)
	if err != nil {
		return err
	}
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	p, err := c.SetPin(ctx, args[0], args[1], api.SetPinRequest{
		Version: args[2], Reason: so.reason, ExpiresAt: exp, Owner: so.owner, OverrideRevoked: so.overrideRevoked,
	})
	if err != nil {
		return err
	}
	return co.emit(stdout, p, pinTable(rollout.PinView{Pin: p}))
}

func runPinClear(ctx context.Context, co *clientOptions, args []string, stdout io.Writer) error {
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	if err := c.ClearPin(ctx, args[0], args[1]); err != nil {
		return err
	}
	out := map[string]string{"org": args[0], "label": args[1], "status": "cleared"}
	return co.emit(stdout, out, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "pin of %s on %s cleared\n", args[0], args[1])
	})
}

func runPinList(ctx context.Context, co *clientOptions, org, label string, p rollout.Page, stdout io.Writer) error {
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	l, err := c.ListPins(ctx, org, label, p)
	if err != nil {
		return err
	}
	return co.emit(stdout, l, pinTable(l.Items...))
}

// ---- imagegate resolve ----

type resolveOptions struct {
	org, run string
}

func newResolveCmd(g *globalOptions) *cobra.Command {
	co := &clientOptions{}
	ro := &resolveOptions{}
	cmd := &cobra.Command{
		Use:   "resolve --org ORG LABEL",
		Short: "Ask which version of LABEL a job of ORG gets, and why",
		Long:  clientHelp,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runResolve(cmd.Context(), co, ro, args, cmd.OutOrStdout())
		},
	}
	co.register(cmd)
	cmd.Flags().StringVar(&ro.org, "org", "", "the organisation (required)")
	cmd.Flags().StringVar(&ro.run, "run", "", "workflow run id: every job of a run gets the same version")
	return cmd
}

func runResolve(ctx context.Context, co *clientOptions, ro *resolveOptions, args []string, stdout io.Writer) error {
	if ro.org == "" {
		return errors.New("--org is required")
	}
	c, err := co.client(ctx)
	if err != nil {
		return err
	}
	res, err := c.Resolve(ctx, ro.org, args[0], ro.run)
	if err != nil {
		return err
	}
	return co.emit(stdout, res, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "LABEL\tVERSION\tREASON\tRING\tROLLOUT\tDETAIL")
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", res.Label, res.Version, res.Reason, res.Ring, dash(res.RolloutID), dash(res.Detail))
	})
}
