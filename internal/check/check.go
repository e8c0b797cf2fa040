// Package check is the release gate's verdict on one image: automatic
// evidence that needs no configuration (every standard-library module of
// every Python imports, every probed tool answers), the diff against a
// baseline image with its changes-file policy, and the declarative tests of
// a spec file, folded into one Report that passes or fails.
//
// The JSON form of the Report is a public contract, documented in SCHEMA.md.
package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// SchemaV1 identifies the JSON form of a Report.
const SchemaV1 = "imagegate/check/v1"

// Options are the evidence beyond the snapshot itself. Every field may be
// nil.
type Options struct {
	// Baseline is the previous image; its diff with the snapshot is part of
	// the verdict.
	Baseline *snapshot.Snapshot
	// Changes declares intended changes. Besides the baseline diff, it
	// waives automatic failures it declares with "break" (a module) or
	// "remove" (a module gone entirely).
	Changes *diff.Changes
	Spec    *Spec
	// Goss is a goss file to run besides Spec (which may be nil), from
	// ReadGossFile or ParseGoss.
	Goss *GossSuite
	// Run starts the image's entrypoint in the sandbox and checks goss's
	// runtime resources (port, process, http, addr, dns) against it, and
	// runs goss's commands beside it, as dgoss run does; nil leaves the
	// runtime resources skipped, saying so, and runs each command in a
	// sandbox of its own. It needs a
	// Target whose Runner is the chroot sandbox.
	Run *GossRun
	// Target is the image's files and runner when the snapshot was just
	// scanned from a SOURCE; nil when it was read from a snapshot file, and
	// then spec tests that need files or commands fail saying so.
	Target *source.Tree
}

// Result statuses, in the order a Report lists them.
const (
	StatusFail = "fail"
	// StatusDeclared: it would fail, but the changes file declares it.
	StatusDeclared = "declared"
	// StatusInfo: worth knowing, never fails (e.g. a module that a
	// distribution ships in an optional package that is not installed).
	StatusInfo = "info"
	StatusPass = "pass"
)

// Result origins.
const (
	OriginAutomatic = "automatic"
	OriginBaseline  = "baseline"
	OriginSpec      = "spec"
)

// Report is the verdict with its evidence.
type Report struct {
	Schema string `json:"schema"`
	// Source is the snapshot's source ("dir:/x", "host").
	Source string `json:"source"`
	// Verdict is "pass" or "fail".
	Verdict string  `json:"verdict"`
	Summary Summary `json:"summary"`
	// Results lists failures first, then declared, info and passed results;
	// within a status, automatic evidence, then baseline, then spec, each in
	// a stable order.
	Results []Result `json:"results"`
	// Baseline is the full diff against --baseline, when one was given.
	Baseline *diff.Report `json:"baseline,omitempty"`
}

// Summary counts results by status.
type Summary struct {
	Failed   int `json:"failed"`
	Declared int `json:"declared"`
	Info     int `json:"info"`
	Passed   int `json:"passed"`
}

// Result is one piece of evidence.
type Result struct {
	// ID names what was checked: "runtime/python@3.7/module/sqlite3",
	// "tool/git", "spec/commandTests[0]" — for automatic and baseline
	// results the same ID a changes file matches.
	ID string `json:"id"`
	// Origin is "automatic", "baseline" or "spec".
	Origin string `json:"origin"`
	// Kind is what sort of check it was: module, runtime, tool, snapshot,
	// diff, command, file, tool-version, python-module, package, metadata.
	Kind   string `json:"kind"`
	Status string `json:"status"`
	// Name is a human title (the spec test's name, or the runtime).
	Name string `json:"name,omitempty"`
	// Message is the verdict in one line, e.g. "import-error: No module
	// named '_sqlite3'".
	Message string `json:"message"`
	// Evidence are further lines: expected vs got, a stderr tail, paths.
	Evidence []string `json:"evidence,omitempty"`
	// Reason is the changes file's reason for a declared result.
	Reason string `json:"reason,omitempty"`

	// declareAs is the changes-file action that would declare this
	// failure ("break", "remove", …); "" when none can (spec tests).
	declareAs string
}

// Failed reports whether the gate fails.
func (r *Report) Failed() bool { return r.Summary.Failed > 0 }

// Failures returns the failed results.
func (r *Report) Failures() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == StatusFail {
			out = append(out, res)
		}
	}
	return out
}

// Run checks snap. It returns an error only when ctx ends or its input is
// unusable (no snapshot, a Spec not made by ParseSpec); every problem with
// the image, including spec tests that cannot run, is a failed Result.
// Run does not modify snap.
func Run(ctx context.Context, snap *snapshot.Snapshot, opts Options) (*Report, error) {
	if snap == nil {
		return nil, errors.New("check: no snapshot")
	}
	if opts.Spec != nil && !opts.Spec.parsed {
		return nil, errors.New("check: the Spec must come from ParseSpec")
	}
	if opts.Goss != nil && !opts.Goss.parsed {
		return nil, errors.New("check: the GossSuite must come from ReadGossFile or ParseGoss")
	}
	r := &Report{Schema: SchemaV1, Source: snap.Source}
	auto, folded := automatic(snap, opts.Changes)
	if opts.Baseline != nil {
		r.Baseline = diff.Compare(opts.Baseline, snap, opts.Changes)
		base := baselineResults(r.Baseline)
		r.Results = append(r.Results, joinBaseline(auto, base, folded)...)
	} else {
		r.Results = append(r.Results, auto...)
	}
	if opts.Spec != nil {
		res, err := runSpec(ctx, snap, opts.Spec, opts.Target, opts.Run)
		if err != nil {
			return nil, err
		}
		r.Results = append(r.Results, res...)
	}
	if opts.Goss != nil {
		res, err := runGoss(ctx, snap, opts.Goss, opts.Target, opts.Run)
		if err != nil {
			return nil, err
		}
		r.Results = append(r.Results, res...)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("check %s: %w", snap.Source, err)
	}
	r.finish()
	return r, nil
}

var statusRank = map[string]int{StatusFail: 0, StatusDeclared: 1, StatusInfo: 2, StatusPass: 3}
var originRank = map[string]int{OriginAutomatic: 0, OriginBaseline: 1, OriginSpec: 2}

func (r *Report) finish() {
	slices.SortStableFunc(r.Results, func(a, b Result) int {
		return cmp.Or(cmp.Compare(statusRank[a.Status], statusRank[b.Status]),
			cmp.Compare(originRank[a.Origin], originRank[b.Origin]))
	})
	r.Summary = Summary{}
	for _, res := range r.Results {
		switch res.Status {
		case StatusFail:
			r.Summary.Failed++
		case StatusDeclared:
			r.Summary.Declared++
		case StatusInfo:
			r.Summary.Info++
		case StatusPass:
			r.Summary.Passed++
		}
	}
	r.Verdict = "pass"
	if r.Summary.Failed > 0 {
		r.Verdict = "fail"
	}
	if r.Results == nil {
		r.Results = []Result{}
	}
}
