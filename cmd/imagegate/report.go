package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

// imagegate report LABEL --text ... [--job ID] [--version V] [--org ORG] [--idempotency-key KEY]

type reportOptions struct {
	*clientOptions
	text, textFile, job, version, org, key string
	stdin                                  io.Reader
}

func newReportCmd(g *globalOptions) *cobra.Command {
	opts := &reportOptions{clientOptions: &clientOptions{}}
	cmd := &cobra.Command{
		Use:   "report LABEL --text TEXT|--text-file FILE [--job ID] [--version VERSION] [--org ORG] [--idempotency-key KEY]",
		Short: "Report a problem with an image; enough organisations reporting one error escalate it",
		Long: `Report a problem with an image as your organisation (an org token), or on an
organisation's behalf (an admin token with --org). Paste the error from the failed job's
log (--text-file - reads stdin): its last error line is matched to the signatures the
server knows from job events. Prose without an error line is stored but matches no
job's signature. When enough organisations report one signature within a day (the
serve config's reports:), the server alerts and halts the rollout that carries it.

A report is sent under an Idempotency-Key, and sent again under it when the server
does not answer, fails (5xx) or throttles (429), so it is stored once. A random key
covers one run of this command; a CI step that may run again (a retried job) gives
--idempotency-key, say its job id with a suffix, and its second run answers the report
stored by the first (replayed in -o json) instead of storing it twice. The same key with
a different report is refused (exit 1, HTTP 422).

` + clientHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.stdin = cmd.InOrStdin()
			return runReport(cmd.Context(), opts, args, cmd.OutOrStdout())
		},
	}
	opts.register(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.text, "text", "", "the error as you saw it (best: the failed step's last log lines)")
	f.StringVar(&opts.textFile, "text-file", "", "read the text from this file (- for stdin)")
	f.StringVar(&opts.job, "job", "", "the failed job's id")
	f.StringVar(&opts.version, "version", "", "the image version the job ran, when known")
	f.StringVar(&opts.org, "org", "", "the organisation reporting (required with an admin token; an org token reports for its own)")
	f.StringVar(&opts.key, "idempotency-key", "", "name this report within the organisation, so that sending it again stores nothing new (default: a random key per run)")
	return cmd
}

func runReport(ctx context.Context, opts *reportOptions, args []string, stdout io.Writer) error {
	text := opts.text
	switch {
	case opts.textFile != "" && text != "":
		return usageErrorf("give --text or --text-file, not both")
	case opts.textFile == "-":
		b, err := io.ReadAll(io.LimitReader(opts.stdin, rollout.MaxReportText+1))
		if err != nil {
			return fmt.Errorf("read the report from stdin: %w", err)
		}
		text = string(b)
	case opts.textFile != "":
		b, err := os.ReadFile(opts.textFile)
		if err != nil {
			return fmt.Errorf("read the report: %w", err)
		}
		text = string(b)
	}
	if strings.TrimSpace(text) == "" {
		return usageErrorf("--text (or --text-file) is required: paste the error from the failed job's log")
	}
	key := opts.key
	if key == "" {
		key = apiclient.NewIdempotencyKey()
	} else if err := rollout.CheckIdempotencyKey(key); err != nil {
		return usageErrorf("--idempotency-key: %v", err)
	}
	c, err := opts.client(ctx)
	if err != nil {
		return err
	}
	res, err := c.ReportWithKey(ctx, key, api.ReportRequest{Label: args[0], Text: text, JobID: opts.job, Version: opts.version, Org: opts.org})
	if err != nil {
		return err
	}
	return opts.emit(stdout, res, func(w *tabwriter.Writer) {
		r := res.Report
		fmt.Fprintln(w, "REPORT\tORG\tLABEL\tSIGNATURE\tKNOWN\tORGS\tESCALATION")
		esc := "-"
		if e := res.Escalation; e != nil {
			esc = e.Action
			if e.RolloutID != "" {
				esc += " " + e.RolloutID
			}
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%t\t%d\t%s\n", r.ID, r.Org, r.Label, dash(r.Signature), r.Known, res.Orgs, esc)
		if r.Template != "" {
			fmt.Fprintf(w, "\nmatched: %s\n", r.Template)
		}
		if res.Replayed {
			fmt.Fprintf(w, "\nalready stored: report %d was sent before under this idempotency key; nothing was added\n", r.ID)
		}
	})
}
