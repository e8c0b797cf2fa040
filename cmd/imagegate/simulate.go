package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/simulate"
)

type simulateOptions struct {
	params   simulate.Params
	seed     uint64
	seeds    int
	parallel int
	db       string
	tempDir  string
	output   string
	out      string
}

func newSimulateCmd(g *globalOptions) *cobra.Command {
	opts := &simulateOptions{params: simulate.DefaultParams()}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Run the control plane against a simulated fleet and compare rollout gates",
		Long: `Run the real control plane (Service, Controller, store) on a simulated clock against a
simulated fleet: orgs of heavy-tailed sizes, daily and weekly cycles, nightly pipelines,
background failures over hundreds of signatures, runners that resolve, run and report,
customers who pin or stop. A scenario decides what the new image version does:

  ` + strings.Join(simulate.Scenarios, ", ") + `

imagegate's gate acts through the real controller; the threshold (Flagger/Argo) and
mann-whitney (Kayenta) gates observe the same job stream and record when they would have
halted. --seed makes a run reproducible; --seeds N runs N seeds from it, in parallel.
The store is SQLite in a temporary directory, or a new schema of the PostgreSQL database
--db names. -o table lists, after the summary, the rollouts imagegate missed (a worse
version not halted in Ring 0) or halted falsely, each with its seed and imagegate's reason;
-o json has every seed's rollouts (runs) and is documented in internal/simulate/SCHEMA.md.

Exit codes:
  0  the simulation ran
  2  usage error (unknown scenario, a parameter out of range) or the store failed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSimulate(cmd.Context(), g, opts, cmd.OutOrStdout())
		},
	}
	p := &opts.params
	f := cmd.Flags()
	f.StringVar(&p.Scenario, "scenario", p.Scenario, "what the new version does: "+strings.Join(simulate.Scenarios, ", "))
	f.Uint64Var(&opts.seed, "seed", 1, "seed of the (first) run")
	f.IntVar(&opts.seeds, "seeds", 1, "number of seeds to run, from --seed on")
	f.IntVar(&opts.parallel, "parallel", 0, "seeds run at once (default: the number of CPUs)")
	f.StringVar(&opts.db, "db", "", "postgres:// URL to simulate on PostgreSQL (a new schema per seed); default SQLite in a temporary directory")
	f.StringVar(&opts.tempDir, "temp-dir", "", "where SQLite's temporary directories go (default the system's)")
	f.StringVarP(&opts.output, "output", "o", "", "output format: json or table (default json when stdout is not a terminal)")
	f.StringVar(&opts.out, "out", "", "write the output to this file instead of stdout")

	f.Float64Var(&p.Hours, "hours", p.Hours, "simulated hours, history included")
	f.Float64Var(&p.HistoryHours, "history-hours", p.HistoryHours, "hours of the old version alone before the rollout starts")
	f.Float64Var(&p.JobsPerHour, "jobs-per-hour", p.JobsPerHour, "the fleet's jobs per hour, averaged over a week")
	f.IntVar(&p.Orgs, "orgs", p.Orgs, "organisations")
	f.IntVar(&p.Ring0Orgs, "ring0-orgs", p.Ring0Orgs, "organisations named in Ring 0, among the busiest --ring0-pool of them")
	f.Float64Var(&p.Ring0Pool, "ring0-pool", p.Ring0Pool, "share of the busiest organisations Ring 0's are drawn from")
	f.Float64Var(&p.OrgSizeAlpha, "org-size-alpha", p.OrgSizeAlpha, "Pareto exponent of org sizes (smaller: heavier tail)")
	f.Float64Var(&p.NightlyShare, "nightly-share", p.NightlyShare, "share of pipelines that run once a night only")
	f.Float64Var(&p.Background, "background", p.Background, "failure rate for reasons unrelated to the image")
	f.IntVar(&p.Signatures, "signatures", p.Signatures, "shared background signatures")
	f.Float64Var(&p.SignatureZipf, "signature-zipf", p.SignatureZipf, "Zipf exponent of their rates")
	f.Float64Var(&p.PrivateShare, "private-share", p.PrivateShare, "share of background failures from a pipeline's own flaky tests")
	f.Float64Var(&p.Ring0Flakiness, "ring0-flakiness", p.Ring0Flakiness, "multiplier of Ring 0 orgs' failure rate")
	f.StringVar(&p.Feature, "feature", p.Feature, "what the broken version breaks: sqlite3, docker, node18, java, openssl")
	f.Float64Var(&p.Affected, "affected", p.Affected, "share of pipelines using the broken feature")
	f.Float64Var(&p.Factor, "factor", p.Factor, "slow-degradation: how much commoner one signature becomes on the new version")
	f.Float64Var(&p.OutageRate, "outage-rate", p.OutageRate, "outage: share of all jobs failing during its hour")
	f.DurationVar(&p.OutageAfter, "outage-after", p.OutageAfter, "outage: when it starts after the rollout reached Ring 0")
	f.IntVar(&p.StormRetries, "storm-retries", p.StormRetries, "retry-storm: retries of the failing job")
	f.DurationVar(&p.StormEvery, "storm-every", p.StormEvery, "retry-storm: time between retries")
	f.IntVar(&p.GiveUpAfter, "give-up-after", p.GiveUpAfter, "failures in a row on the new version before a customer reacts")
	f.DurationVar(&p.ReactAfter, "react-after", p.ReactAfter, "how long a customer takes to react")
	f.Float64Var(&p.PinShare, "pin-share", p.PinShare, "share of reacting customers who pin the old version")
	f.Float64Var(&p.StopShare, "stop-share", p.StopShare, "share of reacting customers who stop the failing pipeline")
	f.DurationSliceVar(&p.BakeTimes, "bake-times", p.BakeTimes, "bake times of the five rings")
	f.Float64Var(&p.ControlPercent, "control-percent", p.ControlPercent, "control share of every ring, in percent")
	f.DurationVar(&p.TickEvery, "tick-every", p.TickEvery, "simulated time between controller ticks (whole minutes)")
	f.IntVar(&p.Batch, "batch", p.Batch, "events per IngestEvents call")
	f.Float64Var(&p.MaxFailureRate, "max-failure-rate", p.MaxFailureRate, "imagegate's optional failure-rate gate beside the telemetry analysis: allowed increase (0.05 = five points; 0 leaves it out)")
	f.IntVar(&p.HealthMinJobs, "health-min-jobs", p.HealthMinJobs, "imagegate's optional failure-rate gate: jobs before it judges")
	f.BoolVar(&p.DryRun, "dry-run", p.DryRun, "imagegate's gate decides without acting: every detector sees the same full stream")
	f.DurationVar(&p.ThresholdWindow, "threshold-window", p.ThresholdWindow, "threshold gate: measurement window")
	f.Float64Var(&p.ThresholdDiff, "threshold-diff", p.ThresholdDiff, "threshold gate: allowed failure-rate difference")
	f.IntVar(&p.ThresholdMinJobs, "threshold-min-jobs", p.ThresholdMinJobs, "threshold gate: new-version jobs before it measures")
	f.IntVar(&p.FailureLimit, "failure-limit", p.FailureLimit, "threshold gate: failing windows in a row that abort")
	f.DurationVar(&p.MWEvery, "mw-every", p.MWEvery, "mann-whitney gate: time between judgements")
	f.DurationVar(&p.MWBucket, "mw-bucket", p.MWBucket, "mann-whitney gate: interval of each failure-rate sample")
	f.Float64Var(&p.MWConfidence, "mw-confidence", p.MWConfidence, "mann-whitney gate: confidence level")
	f.Float64Var(&p.MWTolerance, "mw-tolerance", p.MWTolerance, "mann-whitney gate: tolerance (fraction of the Hodges-Lehmann estimate)")
	f.Float64Var(&p.MWAllowedIncrease, "mw-allowed-increase", p.MWAllowedIncrease, "mann-whitney gate: allowed mean ratio new/old")
	return cmd
}

func runSimulate(ctx context.Context, g *globalOptions, opts *simulateOptions, stdout io.Writer) error {
	format := opts.output
	if format == "" {
		format = defaultFormat(stdout, opts.out)
	}
	if format != "json" && format != "table" {
		return fmt.Errorf("output format %q: use json or table", format)
	}
	open := simulate.SQLiteOpener(opts.tempDir)
	if opts.db != "" {
		open = simulate.PostgresOpener(opts.db)
	}
	log := g.logger()
	rep, _, err := simulate.Run(ctx, opts.params, simulate.Options{Seeds: opts.seeds, SeedStart: opts.seed, Parallel: opts.parallel, Open: open,
		Progress: func(r simulate.SeedResult) {
			log.Debug("seed done", "seed", r.Seed, "jobs", r.Jobs, "minutes", r.Minutes, "elapsed", r.Elapsed, "ingest", r.Ingest, "tick", r.Tick)
		}})
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return writeOutput(stdout, opts.out, func(w io.Writer) error {
		if format == "table" {
			return rep.WriteTable(w)
		}
		return rep.WriteJSON(w)
	})
}
