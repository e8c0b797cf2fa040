package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

// maxAnalysisRows bounds the signatures the table shows per ring (-o json
// has them all).
const maxAnalysisRows = 15

func newRolloutAnalysisCmd(co *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "analysis ROLLOUT_ID|LABEL",
		Short: "The telemetry decision of each ring: exposure, outcome and why, signatures with counts, statistic and probable cause; LABEL means the image's newest rollout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutAnalysis(cmd.Context(), co, args, cmd.OutOrStdout())
		},
	}
}

// rolloutID is id when it names a rollout, else the newest rollout of the
// image labelled id.
func rolloutID(ctx context.Context, c *apiclient.Client, id string) (string, error) {
	_, err := c.Rollout(ctx, id)
	if !errors.Is(err, rollout.ErrNotFound) {
		return id, err
	}
	l, err := c.ListRollouts(ctx, id, nil, rollout.Page{Limit: 1})
	if err != nil {
		return "", err
	}
	if len(l.Items) == 0 {
		return "", fmt.Errorf("%q is neither a rollout ID nor an image with rollouts (see imagegate rollout list)", id)
	}
	return l.Items[0].ID, nil
}

func runRolloutAnalysis(ctx context.Context, opts *clientOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	id, err := rolloutID(ctx, c, args[0])
	if err != nil {
		return err
	}
	a, err := c.Analysis(ctx, id)
	if err != nil {
		return err
	}
	return opts.emit(stdout, a, func(w *tabwriter.Writer) {
		r := a.Rollout
		fmt.Fprintf(w, "rollout\t%s: %s %s -> %s, %s in ring %d\n", r.ID, r.Label, dash(r.FromVersion), r.Version, r.State, r.Ring)
		for _, ra := range a.Rings {
			d := ra.Decision
			fmt.Fprintf(w, "\nring %d (%s)\t%s (action %s)\n", ra.Ring, ra.Name, d.Outcome, ra.Action)
			fmt.Fprintf(w, "why\t%s\n", d.Why)
			fmt.Fprintf(w, "new\t%d pipelines, %d jobs, %d failed (history %d/%d)\n", ra.New.Pipelines, ra.New.Jobs, ra.New.FailedJobs,
				ra.New.History.FailedJobs, ra.New.History.Jobs)
			fmt.Fprintf(w, "old\t%d pipelines, %d jobs, %d failed (history %d/%d)\n", ra.Old.Pipelines, ra.Old.Jobs, ra.Old.FailedJobs,
				ra.Old.History.FailedJobs, ra.Old.History.Jobs)
			fmt.Fprintf(w, "tests\t%d hypotheses, %d rejected at alpha %g, cohort ratio %.2f\n", d.Hypotheses, d.Rejected, d.Params.Alpha, d.CohortRatio)
			if len(d.Signatures) == 0 {
				continue
			}
			// Evidence pipelines / orgs / failed jobs on each side.
			fmt.Fprintln(w, "SIGNATURE\tNEW P/O/J\tOLD P/O/J\tLOG E\tBAR\tREGRESSION\tTEMPLATE\tPROBABLE CAUSE")
			for i, s := range d.Signatures {
				if i == maxAnalysisRows {
					fmt.Fprintf(w, "…\t%d more (-o json)\n", len(d.Signatures)-i)
					break
				}
				cause := "-"
				if cs := ra.Causes[s.ID]; len(cs) > 0 {
					cause = cs[0].Change.ID
				}
				logE := "-"
				if s.Test.Eligible {
					logE = fmt.Sprintf("%.1f", s.Test.LogE)
				}
				fmt.Fprintf(w, "%s\t%d/%d/%d\t%d/%d/%d\t%s\t%.1f\t%v\t%s\t%s\n", s.ID,
					s.New.PipelinesWithoutHistory, s.New.OrgsWithoutHistory, s.New.Jobs,
					s.Old.PipelinesWithoutHistory, s.Old.Orgs, s.Old.Jobs, // the old side's evidence is a total
					logE, s.Test.LogThreshold, s.Test.Regression, cut(s.Template, 60), cause)
			}
		}
	})
}

type signaturesOptions struct {
	*clientOptions
	page   rollout.Page
	window time.Duration
}

func newSignaturesCmd(_ *globalOptions) *cobra.Command {
	o := &signaturesOptions{clientOptions: &clientOptions{}}
	cmd := &cobra.Command{
		Use:   "signatures LABEL [VERSION]",
		Short: "List the error signatures of an image's failed jobs (of one version) with their counts",
		Long:  clientHelp,
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSignatures(cmd.Context(), o, args, cmd.OutOrStdout())
		},
	}
	o.register(cmd)
	cmd.Flags().IntVar(&o.page.Limit, "limit", 0, "at most this many (server default 100)")
	cmd.Flags().StringVar(&o.page.After, "after", "", "the next cursor of a previous page")
	cmd.Flags().DurationVar(&o.window, "window", 24*time.Hour, "the trend's window: failed jobs per hour over it, up to 168h")
	return cmd
}

func runSignatures(ctx context.Context, opts *signaturesOptions, args []string, stdout io.Writer) error {
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	version := ""
	if len(args) == 2 {
		version = args[1]
	}
	if opts.window <= 0 || opts.window > rollout.MaxTrendWindow {
		return usageErrorf("--window %s: want a duration above 0 and at most %s", opts.window, rollout.MaxTrendWindow)
	}
	l, err := c.Signatures(ctx, args[0], version, opts.window, opts.page)
	if err != nil {
		return err
	}
	return opts.emit(stdout, l, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "VERSION\tSIGNATURE\tJOBS\tPIPELINES\tORGS\tFIRST SEEN\tLAST SEEN\tLAST %s\tTEMPLATE\n", strings.ToUpper(shortDuration(opts.window)))
		for _, s := range l.Items {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", s.Version, s.ID, s.Jobs, s.Pipelines, s.Orgs, ts(s.FirstSeen), ts(s.LastSeen),
				sparkline(s.Trend, maxTrendCells), cut(s.Template, 70))
		}
		if l.Next != "" {
			fmt.Fprintf(w, "more: --after %s\n", l.Next)
		}
	})
}

// cut shortens s to at most n runes for a table cell.
func cut(s string, n int) string {
	s = strings.ReplaceAll(s, "\t", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// maxTrendCells bounds a trend's sparkline in the table: a longer window
// sums neighbouring hours into one cell.
const maxTrendCells = 48

// sparkline draws a trend's buckets as block characters scaled to its
// largest, at most cells wide; an hour without jobs is a dot, so that a
// quiet hour is told from a low one.
func sparkline(trend []rollout.TrendBucket, cells int) string {
	if len(trend) == 0 {
		return "-"
	}
	per := (len(trend) + cells - 1) / cells
	var sums []int64
	for i := 0; i < len(trend); i += per {
		var n int64
		for _, b := range trend[i:min(i+per, len(trend))] {
			n += b.Jobs
		}
		sums = append(sums, n)
	}
	top := slices.Max(sums)
	const bars = "▁▂▃▄▅▆▇█"
	levels := []rune(bars)
	var b strings.Builder
	for _, n := range sums {
		switch {
		case n == 0:
			b.WriteRune('·')
		default:
			b.WriteRune(levels[min(int((n*int64(len(levels))-1)/top), len(levels)-1)])
		}
	}
	return b.String()
}

// shortDuration prints 24h0m0s as 24h.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}
