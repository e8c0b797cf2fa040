package runtimes

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// The parts sweep: one runtime process checks a list of parts (modules,
// capabilities, tools) one by one and reports each on stdout as a JSON line,
// flushed: {"t":"hello",...}, then per part {"t":"start","m":P} and
// {"t":"ok"|"err"|"timeout","m":P,"e":...,"d":...}, and {"t":"done"}. The
// probes (probes/Probe.java, node.js, ruby.rb) speak it; this file runs them
// with a watchdog over each part and restarts the process after the part
// that killed or hung it, so that one bad part costs one verdict, not the
// sweep.

const (
	// sweepStartup bounds how long a runtime may take to say hello.
	sweepStartup = 30 * time.Second
	// sweepGrace is added to the per-part limit before the watchdog kills
	// the process: the probes end a slow part themselves where they can.
	sweepGrace     = 2 * time.Second
	maxSweepOutput = 4 << 20
)

// partResult is one part's verdict with execution.
type partResult struct {
	status string // snapshot.StatusOK, StatusImportError, StatusCrash, StatusTimeout
	err    string
	detail string
}

type sweepEvent struct {
	T       string   `json:"t"`
	M       string   `json:"m"`
	E       string   `json:"e"`
	D       string   `json:"d"`
	Version string   `json:"version"`
	Modules []string `json:"modules"`
	Extra   []string `json:"extra"`
}

// sweepOutcome is what a sweep learnt: the hello line (the runtime's own
// version and lists) and a verdict per part that ran.
type sweepOutcome struct {
	hello   *sweepEvent
	results map[string]partResult
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

// runPartsSweep runs spec's probe until every part has a verdict, restarting
// it after a part that crashed or hung it. The warning is non-empty when the
// sweep could not run or ended early; parts without a verdict keep their
// static status.
func runPartsSweep(ctx context.Context, r source.Runner, spec sweepSpec) (sweepOutcome, string) {
	out := sweepOutcome{results: map[string]partResult{}}
	todo := spec.parts
	for attempt := 0; attempt <= len(spec.parts); attempt++ {
		run, res, err := runSweepOnce(ctx, r, spec, todo)
		if err != nil {
			out.startErr = err.Error()
			return out, fmt.Sprintf("%s: parts not checked by running it, statuses are from files only: %v", spec.what, err)
		}
		if out.hello == nil {
			if run.hello == nil {
				out.startErr = cmp.Or(run.stderr.lastLine(), describeEnd(res, ""))
				return out, fmt.Sprintf("%s: parts check did not start (%s), statuses are from files only", spec.what, describeEnd(res, run.stderr.lastLine()))
			}
			out.hello = run.hello
		}
		for k, v := range run.results {
			out.results[k] = v
		}
		if run.done || ctx.Err() != nil {
			return out, ""
		}
		culprit := run.current
		if culprit == "" {
			return out, fmt.Sprintf("%s: parts check ended early (%s); parts after that keep their static status", spec.what, describeEnd(res, run.stderr.lastLine()))
		}
		if run.watchdog == culprit {
			out.results[culprit] = partResult{status: snapshot.StatusTimeout, err: fmt.Sprintf("did not finish within %s; the process was killed", spec.timeout)}
		} else {
			out.results[culprit] = partResult{status: snapshot.StatusCrash, err: describeEnd(res, run.stderr.lastLine())}
		}
		i := slices.Index(todo, culprit)
		if i < 0 || i+1 >= len(todo) {
			return out, ""
		}
		todo = todo[i+1:]
	}
	return out, ""
}

type sweepRun struct {
	mu       sync.Mutex
	line     []byte
	hello    *sweepEvent
	current  string
	started  time.Time
	results  map[string]partResult
	done     bool
	watchdog string
	stderr   *tail
}

func (s *sweepRun) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.line = append(s.line, p...)
	for {
		i := bytes.IndexByte(s.line, '\n')
		if i < 0 {
			break
		}
		var ev sweepEvent
		if json.Unmarshal(s.line[:i], &ev) == nil {
			s.handle(&ev)
		}
		s.line = s.line[i+1:]
	}
	return len(p), nil
}

func (s *sweepRun) handle(ev *sweepEvent) {
	switch ev.T {
	case "hello":
		s.hello = ev
	case "start":
		s.current, s.started = ev.M, time.Now()
	case "ok":
		s.results[ev.M] = partResult{status: snapshot.StatusOK, detail: ev.D}
		s.current = ""
	case "err":
		s.results[ev.M] = partResult{status: snapshot.StatusImportError, err: ev.E}
		s.current = ""
	case "timeout":
		s.results[ev.M] = partResult{status: snapshot.StatusTimeout, err: "did not finish within the time limit"}
		s.current = ""
	case "done":
		s.done = true
	}
}

func runSweepOnce(ctx context.Context, r source.Runner, spec sweepSpec, parts []string) (*sweepRun, sandbox.Result, error) {
	run := &sweepRun{results: map[string]partResult{}, stderr: &tail{}}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	began := time.Now()
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			run.mu.Lock()
			switch {
			case run.hello == nil && time.Since(began) > sweepStartup:
				cancel()
			case run.current != "" && time.Since(run.started) > spec.timeout+sweepGrace:
				run.watchdog = run.current
				cancel()
			}
			run.mu.Unlock()
		}
	}()
	cmd := spec.command(parts)
	cmd.Stdout, cmd.Stderr, cmd.MaxOutput = run, run.stderr, maxSweepOutput
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	res, err := r.Run(runCtx, cmd)
	run.mu.Lock()
	defer run.mu.Unlock()
	return run, res, err
}

// tail keeps the last bytes written to it: the end of stderr is the
// evidence when a runtime dies.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8192 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-4096:]...)
	}
	return len(p), nil
}

func (t *tail) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	return strings.ToValidUTF8(strings.TrimSpace(lines[len(lines)-1]), "\uFFFD")
}

func describeEnd(res sandbox.Result, stderr string) string {
	var s string
	switch {
	case res.Signal != "":
		s = "killed by " + res.Signal
	case res.TimedOut:
		s = "killed after a timeout"
	default:
		s = fmt.Sprintf("exited with status %d", res.ExitCode)
	}
	if stderr != "" {
		s += ": " + stderr
	}
	return s
}
