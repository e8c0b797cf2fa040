package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/diff"
	rpt "github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/spf13/cobra"
)

// loadImage reads a snapshot file, or scans a SOURCE. For a SOURCE it also
// returns the image's files and runner (for spec tests), which the caller
// must Close; for a file the tree is nil (and Close on it does nothing).
func loadImage(ctx context.Context, g *globalOptions, o scanOptions, arg string) (*snapshot.Snapshot, *source.Tree, error) {
	if !source.IsSource(arg) {
		snap, err := snapshot.ReadFile(arg)
		if err != nil {
			return nil, nil, notASnapshot(arg, err)
		}
		return snap, nil, nil
	}
	return scanForGate(ctx, g, o, arg)
}

// loadSnapshot is loadImage for when only the snapshot is needed.
func loadSnapshot(ctx context.Context, g *globalOptions, o scanOptions, arg string) (*snapshot.Snapshot, error) {
	return snapshotOnly(loadImage(ctx, g, o, arg))
}

// snapshotOnly closes the tree of a load or scan whose caller needs only
// the snapshot.
func snapshotOnly(snap *snapshot.Snapshot, tree *source.Tree, err error) (*snapshot.Snapshot, error) {
	if err != nil {
		return nil, err
	}
	tree.Close()
	return snap, nil
}

// gateFormats are the output formats of diff and check.
const gateFormats = "output format: table, json, markdown or junit"

func addScanFlags(cmd *cobra.Command, o *scanOptions) {
	o.addFlags(cmd.Flags(), "how to run the programs of a SOURCE that is scanned first: auto, none, local or chroot")
}

type diffOptions struct {
	scan    scanOptions
	changes string
	format  string
	out     string
}

func newDiffCmd(g *globalOptions) *cobra.Command {
	var o diffOptions
	cmd := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Compare two images and fail on what changed unexpectedly",
		Long: `Compare two images. OLD and NEW are snapshot files or scan SOURCEs (scanned first).
Entries are matched by identity (python@3.7, package/deb/libssl3, tool/git); removed,
downgraded and newly broken entries fail unless the --changes file declares them.

` + exitHelpGate,
		Example: "  imagegate diff previous.json current.json -o markdown\n  imagegate diff previous.json dir:/mnt/image --changes changes.yaml -o junit --out diff.xml",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), g, o, args[0], args[1], cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.changes, "changes", "", "YAML file declaring intended changes")
	addOutputFlags(cmd.Flags(), &o.format, &o.out, "table", gateFormats)
	addScanFlags(cmd, &o.scan)
	return cmd
}

func loadChanges(path string) (*diff.Changes, error) {
	if path == "" {
		return nil, nil
	}
	return diff.ReadChanges(path)
}

// checkFormat refuses a format before any work; diff and check accept the
// same names on the command line (diff's "md" alias is for library callers).
func checkFormat(format string) error { return check.Formats.Check(format) }

func runDiff(ctx context.Context, g *globalOptions, o diffOptions, oldArg, newArg string, stdout io.Writer) error {
	if err := checkFormat(o.format); err != nil {
		return err
	}
	changes, err := loadChanges(o.changes)
	if err != nil {
		return err
	}
	var oldSnap, newSnap *snapshot.Snapshot
	if !source.IsSource(oldArg) && !source.IsSource(newArg) {
		// Both are files: decode them at once (a million entries each
		// must diff in under two seconds). A file that is not there gets
		// the hint check gives.
		for _, arg := range []string{oldArg, newArg} {
			if fi, err := os.Stat(arg); err != nil || fi.IsDir() {
				return notASnapshot(arg, err)
			}
		}
		if oldSnap, newSnap, err = diff.LoadPair(ctx, oldArg, newArg); err != nil {
			return err
		}
	} else {
		if oldSnap, err = loadSnapshot(ctx, g, o.scan, oldArg); err != nil {
			return err
		}
		if newSnap, err = loadSnapshot(ctx, g, o.scan, newArg); err != nil {
			return err
		}
	}
	report := diff.Compare(oldSnap, newSnap, changes)
	if err := writeOutput(stdout, o.out, func(w io.Writer) error { return report.Write(w, o.format) }); err != nil {
		return err
	}
	if report.Failed() {
		return errGateFailed
	}
	return nil
}

type checkOptions struct {
	scan         scanOptions
	baseline     string
	spec         string
	goss         string
	vars         string
	varsInline   string
	run          bool
	wait         time.Duration
	changes      string
	format       string
	out          string
	junit        string
	writeChanges string
}

func newCheckCmd(g *globalOptions) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check TARGET",
		Short: "The release gate: fail an image that lost something, with no test written for it",
		Long: `Check an image. TARGET is a snapshot file or a scan SOURCE (scanned first).
With no configuration, every standard-library module of every runtime must import, every
shared library must resolve, and every probed tool must answer. --baseline adds the diff
against the previous image; --spec adds declarative tests (commands, files, versions,
modules, packages, image metadata): imagegate's own, a container-structure-test config, or a
goss file (recognised by its resource types; --goss names one explicitly), rendered as a goss
template with --vars and --vars-inline. --run starts the image's entrypoint and cmd in the chroot
sandbox (its own network, loopback only; as the image's USER in its WORKDIR with its Env), as
dgoss run does, and checks goss's port, process, http, addr and dns against it, and runs its
commands beside it (as docker exec), retried until they pass or --wait is over; then it stops
everything it started. Without --run the runtime resources are reported as skipped.

` + exitHelpGate,
		Example: "  imagegate check dir:/opt/hostedtoolcache\n  imagegate check oci:./image --baseline previous.json --spec image-tests.yaml --junit check.xml\n" +
			"  imagegate check oci:./image --exec chroot --goss goss.yaml --vars vars.yaml --run --wait 30s",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), g, o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.baseline, "baseline", "", "the previous image: a snapshot file or a SOURCE")
	f.StringVar(&o.spec, "spec", "", "YAML file of declarative tests (imagegate, container-structure-test or goss)")
	f.StringVar(&o.goss, "goss", "", "goss file to run against the image, with its gossfile includes")
	f.StringVar(&o.vars, "vars", "", "YAML or JSON file of variables for goss templates (.Vars), as goss --vars")
	f.StringVar(&o.varsInline, "vars-inline", "", "YAML or JSON mapping of goss template variables, over --vars key by key, as goss --vars-inline")
	f.BoolVar(&o.run, "run", false, "start the image's entrypoint in the chroot sandbox and check goss's runtime resources against it, as dgoss run (needs root)")
	f.DurationVar(&o.wait, "wait", check.DefaultRunWait, "with --run: how long goss's runtime resources are retried until they pass, as goss validate --retry-timeout")
	f.StringVar(&o.changes, "changes", "", "YAML file declaring intended changes against the baseline")
	addOutputFlags(f, &o.format, &o.out, "table", gateFormats)
	f.StringVar(&o.junit, "junit", "", "also write a JUnit XML report to this file")
	f.StringVar(&o.writeChanges, "write-changes", "", "write a changes file to FILE that declares every current failure with a TODO reason (to adopt the gate now and tighten it later)")
	addScanFlags(cmd, &o.scan)
	return cmd
}

func runCheck(ctx context.Context, g *globalOptions, o checkOptions, targetArg string, stdout, stderr io.Writer) error {
	if err := checkFormat(o.format); err != nil {
		return err
	}
	if o.writeChanges != "" && o.writeChanges == o.changes {
		return usageErrorf("--write-changes %s would overwrite the --changes file it reads: name another file", o.writeChanges)
	}
	changes, err := loadChanges(o.changes)
	if err != nil {
		return err
	}
	vars, err := check.ReadGossVars(o.vars, o.varsInline)
	if err != nil {
		if _, ok := errors.AsType[*fs.PathError](err); ok {
			return fmt.Errorf("--vars %s: %w", o.vars, unwrapPath(err))
		}
		return usageErrorf("%v", err)
	}
	tmpl := check.GossTemplate{Vars: vars}
	var spec *check.Spec
	if o.spec != "" {
		data, err := os.ReadFile(o.spec)
		if err != nil {
			return fmt.Errorf("--spec %s: %w", o.spec, unwrapPath(err))
		}
		if spec, err = check.ParseSpecTemplate(o.spec, data, tmpl); err != nil {
			return err
		}
	}
	var goss *check.GossSuite
	if o.goss != "" {
		if goss, err = check.ReadGossFile(o.goss, tmpl); err != nil {
			if _, ok := errors.AsType[*fs.PathError](err); ok {
				return fmt.Errorf("--goss %s: %w", o.goss, unwrapPath(err))
			}
			return err
		}
	}
	var run *check.GossRun
	if o.run {
		if goss == nil && (spec == nil || spec.Goss == nil) {
			return usageErrorf("--run starts the entrypoint for a goss file's runtime resources: give one with --goss or --spec")
		}
		if o.scan.exec == "none" || o.scan.exec == "local" {
			return usageErrorf("--run needs the chroot sandbox, which gives the entrypoint a network of its own: use --exec chroot (or auto), as root")
		}
		if o.wait <= 0 {
			return usageErrorf("--wait %s: give a positive duration such as 5s", o.wait)
		}
		run = &check.GossRun{Wait: o.wait}
	} else if o.wait != check.DefaultRunWait {
		return usageErrorf("--wait is how long --run waits: add --run, or leave --wait out")
	}
	var baseline *snapshot.Snapshot
	if o.baseline != "" {
		if baseline, err = loadSnapshot(ctx, g, o.scan, o.baseline); err != nil {
			return fmt.Errorf("--baseline %w", err)
		}
	}
	snap, tree, err := loadImage(ctx, g, o.scan, targetArg)
	if err != nil {
		return err
	}
	defer tree.Close()
	report, err := check.Run(ctx, snap, check.Options{Baseline: baseline, Changes: changes, Spec: spec, Goss: goss, Run: run, Target: tree})
	if err != nil {
		return err
	}
	if o.junit != "" {
		if err := writeOutput(stdout, o.junit, func(w io.Writer) error { return report.Write(w, "junit") }); err != nil {
			return err
		}
	}
	if err := writeOutput(stdout, o.out, func(w io.Writer) error { return report.Write(w, o.format) }); err != nil {
		return err
	}
	// The last line says what to do next: how to accept today's failures
	// (a machine's first check is often red for a known gap), or how to use
	// the file just written.
	if o.writeChanges != "" {
		var n int
		err := writeOutput(stdout, o.writeChanges, func(w io.Writer) (err error) { n, err = report.WriteChanges(w); return err })
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "imagegate: wrote %d %s to %s: replace each TODO reason, then run imagegate check %s --changes %s\n",
			n, rpt.Plural(n, "declaration", "declarations"), o.writeChanges, targetArg, o.writeChanges)
	} else if report.Failed() && o.changes == "" {
		fmt.Fprintf(stderr, "imagegate: to accept these failures for now and tighten the gate later, run imagegate check %s --write-changes changes.yaml\n", targetArg)
	}
	if report.Failed() {
		return errGateFailed
	}
	return nil
}
