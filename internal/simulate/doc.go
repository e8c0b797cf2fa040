// Package simulate runs the real control plane — rollout.Service, the
// rollout.Controller and a real store (SQLite in a temporary directory, or
// a schema of a PostgreSQL database) — against a simulated fleet on a
// simulated clock, and measures how imagegate's gate and the gates other
// tools use would have done on exactly the same job stream
// (`imagegate simulate`, issue 8). Only the public API drives it:
// SetRings, PushVersion, StartRollout, Resolve, IngestEvents, SetPin,
// GetRollout and Controller.Tick.
//
// # The fleet
//
// Orgs have Pareto(OrgSizeAlpha) sizes, so a few run most jobs; an org
// has 1 + 6·√(size/mean) pipelines (at most 1,000) sharing its jobs by
// Zipf. Ring 0 names Ring0Orgs orgs drawn among the busiest Ring0Pool of
// them (100 of the busiest 10 % by default: about 6 % of the jobs over
// 2,000 to 3,000 pipelines). Runs arrive as
// a Poisson process whose rate follows a daily wave (peak 15:00 UTC, half
// the mean at night) and a weekly one (weekends at 0.5, weekdays at 1.2);
// NightlyShare of pipelines instead run once a night between 01:00 and
// 04:00. A run has one or more matrix jobs and sometimes a later stage
// that starts when its first job ends, so run affinity (runId) matters.
//
// Every pipeline uses a Python version and, with probability Affected,
// the feature the broken version breaks (Feature: sqlite3, docker,
// node18, java, openssl), whose real error text a job of it fails with on
// that version, every time.
//
// Background failures: a job fails with probability Background × the
// hour's load (±25 % over the day) × its org's and its pipeline's
// lognormal flakiness (mean 1; a few pipelines are very flaky) × Ring0Flakiness
// for Ring 0's orgs. A failure is the pipeline's own flaky test with
// probability PrivateShare (twice that in Ring 0), else one of Signatures
// shared signatures drawn by Zipf(SignatureZipf), each built from a family
// of real log tails (network timeouts with hosts and ports, npm errors,
// `No module named '<user package>'`, flaky pytest and go tests, OOMs with
// sizes, git and registry errors, compile and lint errors, bare exit
// codes) whose variable parts are drawn per job. 1 % of jobs are
// canceled.
//
// Runners resolve when a job starts, run it (lognormal, median four
// minutes; failures end sooner), and report 2 s plus an exponential delay
// later, 2 % of them 5 to 30 minutes late. Customers whose pipeline failed
// GiveUpAfter times in a row on the new version react ReactAfter later:
// PinShare of them pin the old version (SetPin), StopShare stop running the
// pipeline, so the signal erodes as it did in 2019.
//
// # The control plane
//
// Five rings (canary: the named orgs; early 2 %, wave1 10 %, wave2 50 %,
// everyone) with BakeTimes and a ControlPercent control share each, the
// old version completed first, the new one started HistoryHours later with
// AutoRollback; the controller ticks every TickEvery. Reports are ingested
// once a simulated minute in batches of up to Batch. serviceOptions is the
// single place the Service (and with it imagegate's gate) is configured:
// serve's, the telemetry analysis (rollout.TelemetryHealth as Health and
// Analyzer, with its default policies) over signatures the stored Signer
// mines from the failed jobs' texts, every event carrying its pipeline and
// workflow run.
//
// # Scenarios
//
// clean: the new version is identical. broken-feature: it breaks Feature.
// slow-degradation: one common signature is Factor times as frequent on
// it. outage: for an hour, starting OutageAfter the rollout reached Ring 0,
// OutageRate of all jobs fail on both versions with a registry error.
// retry-storm: a Ring 0 pipeline on the new version re-runs a failing job
// StormRetries times in one workflow run. improvement: it fixes the
// commonest signature. text-drift: broken-feature whose error text varies
// with the Python version (ImportError or ModuleNotFoundError, other
// paths). two-labels: two images roll out at once, the second broken.
//
// # Detectors
//
// imagegate acts through the controller (DryRun makes it record instead);
// threshold and mann-whitney observe (peers.go). Every detector is scored
// by when it halted relative to the rollout reaching Ring 0, and by the
// failed jobs and orgs the bad version had caused by then (jobs started
// before the halt whose failure the version caused).
//
// A wrapper around imagegate's gate (gateLog) keeps the reason of its
// last verdict on each rollout and of its first failing one, so a seed's
// result says why imagegate halted a rollout (the reason the controller
// stored, or in a dry run the would-be one) or why it let it pass. The
// report carries every seed's result (-o json's runs); the table lists,
// after the summary, the rollouts that miss a bar: a worse one not halted
// in Ring 0, a false halt.
//
// # Reproducibility
//
// One PCG stream per seed drives every draw, in a fixed order; the
// parallel resolves of a minute read a routing table nothing changes while
// they run, and the first job of each run resolves before the run's
// others, so a seed gives the same result bit for bit. Seeds run in
// parallel, each on its own store.
package simulate
