package runtimes

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/sweep"
	"github.com/imagegate/imagegate/internal/source"
)

// The probes (probes/Probe.java, node.js, ruby.rb) speak the parts-sweep
// protocol of package sweep, which runs them with a watchdog over each part
// and a restart after the part that killed or hung the process.

const maxSweepOutput = 4 << 20

// sweepHello is a probe's hello line: the runtime's own version and lists.
type sweepHello struct {
	Version string   `json:"version"`
	Modules []string `json:"modules"`
	Extra   []string `json:"extra"`
}

// sweepOutcome is what a sweep learnt: the hello line and a verdict per part
// that ran.
type sweepOutcome struct {
	hello   *sweepHello
	results map[string]sweep.Result
	// startErr says why the runtime never said hello: the last line it
	// wrote on stderr (the loader's "error while loading shared
	// libraries"), else how it ended.
	startErr string
}

// sweepSpec says how to run one runtime's probe.
type sweepSpec struct {
	// command returns the process that checks parts, in order.
	command func(parts []string) sandbox.Command
	parts   []string
	timeout time.Duration // per part
	// what names the runtime in warnings ("java at /opt/jdk").
	what string
}

// runPartsSweep runs spec's probe until every part has a verdict. The
// warning is non-empty when the sweep could not run or ended early; parts
// without a verdict keep their static status.
func runPartsSweep(ctx context.Context, r source.Runner, spec sweepSpec) (sweepOutcome, string) {
	o := sweep.Run(ctx, r, sweep.Spec[sweepHello]{
		Command:   func(parts []string, _ bool) sandbox.Command { return spec.command(parts) },
		Parts:     spec.parts,
		Timeout:   spec.timeout,
		MaxOutput: maxSweepOutput,
	})
	out := sweepOutcome{hello: o.Hello, results: o.Results}
	switch o.Stop {
	case sweep.NotRun:
		out.startErr = o.Err.Error()
		return out, fmt.Sprintf("%s: parts not checked by running it, statuses are from files only: %v", spec.what, o.Err)
	case sweep.NotStarted:
		out.startErr = cmp.Or(o.Stderr, sweep.Describe("", o.Exit, ""))
		return out, fmt.Sprintf("%s: parts check did not start (%s), statuses are from files only", spec.what, o.Ending)
	case sweep.EndedEarly:
		return out, fmt.Sprintf("%s: parts check ended early (%s); parts after that keep their static status", spec.what, o.Ending)
	}
	return out, ""
}

// describeEnd says how a runtime's process ended, with its last stderr line.
func describeEnd(res sandbox.Result, stderr string) string {
	return sweep.Describe("", res, stderr)
}
