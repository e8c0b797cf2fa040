// Package sweep drives a probe process that checks a list of parts
// (Python modules, Java modules, Node built-ins, Ruby extensions) one by
// one inside an image. The process reports on stdout as JSON lines,
// flushed: {"t":"hello",...}, then per part {"t":"start","m":P} and
// {"t":"ok"|"err"|"timeout","m":P,"e":...,"d":...}, and {"t":"done"}.
// Run keeps a watchdog over each part and restarts the process after the
// part that killed or hung it, so that one bad part costs one verdict, not
// the sweep. The collectors share it instead of each carrying a copy; it
// imports no collector.
package sweep

import (
	"bytes"
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

const (
	// startupLimit bounds how long a process may take to say hello.
	startupLimit = 30 * time.Second
	// grace is added to the per-part limit before the watchdog kills the
	// process: the probes end a slow part themselves where they can.
	grace = 2 * time.Second
)

// Result is one part's verdict with execution.
type Result struct {
	Status string // snapshot.StatusOK, StatusImportError, StatusCrash, StatusTimeout
	Err    string
	Detail string
}

// Stop says why a sweep gave no verdict for some parts.
type Stop int

const (
	// Finished: every part the process planned has a verdict (or the
	// caller's context ended).
	Finished Stop = iota
	// NotRun: the process could not be run at all; see Outcome.Err.
	NotRun
	// NotStarted: the process ran but never said hello.
	NotStarted
	// EndedEarly: the process ended between parts, before "done".
	EndedEarly
)

// Spec says how to run one probe. H is the probe's hello line, decoded.
type Spec[H any] struct {
	// Command returns the process that checks parts, in order; restart is
	// false for the first process and true for those after a culprit.
	Command func(parts []string, restart bool) sandbox.Command
	// Parts are given to the first process.
	Parts []string
	// Plan, when set, is the order the process said it checks parts in
	// (from its hello); the restarts continue along it. Else Parts.
	Plan func(hello *H) []string
	// Timeout is the limit per part.
	Timeout time.Duration
	// MaxOutput bounds the process's output (sandbox.Command.MaxOutput).
	MaxOutput int64
	// Action names what checking a part does in verdicts ("import" gives
	// "import did not finish ..."); empty for none.
	Action string
	// Process names the process in verdicts and endings ("interpreter"
	// gives "interpreter killed by SIGSEGV"); empty: "killed by SIGSEGV"
	// and "the process was killed".
	Process string
}

// Outcome is what a sweep learnt.
type Outcome[H any] struct {
	// Hello is the first process's hello line; nil when it never said it.
	Hello *H
	// Results has a verdict per part that ran.
	Results map[string]Result
	Stop    Stop
	// Err says why the process could not run (Stop NotRun).
	Err error
	// Stderr is the last line the last process wrote on stderr: the
	// loader's "error while loading shared libraries" when it never
	// started.
	Stderr string
	// Exit is how the last process ended.
	Exit sandbox.Result
	// Ending describes that end with Stderr, in Spec.Process's words
	// (Stop NotStarted and EndedEarly).
	Ending string
}

// Run runs spec's probe until every part has a verdict, restarting it after
// a part that crashed or hung it. Parts without a verdict keep whatever the
// caller knew of them from files.
func Run[H any](ctx context.Context, r source.Runner, spec Spec[H]) Outcome[H] {
	out := Outcome[H]{Results: map[string]Result{}}
	todo, restart := spec.Parts, false
	var planned int
	for attempt := 0; ; attempt++ {
		run, res, err := runOnce(ctx, r, spec, todo, restart)
		if err != nil {
			out.Stop, out.Err = NotRun, err
			return out
		}
		out.Exit, out.Stderr = res, run.stderr.lastLine()
		out.Ending = Describe(spec.Process, res, out.Stderr)
		if out.Hello == nil {
			if run.hello == nil {
				out.Stop = NotStarted
				return out
			}
			out.Hello = run.hello
			if spec.Plan != nil {
				todo = spec.Plan(run.hello)
			}
			planned = len(todo)
		}
		for k, v := range run.results {
			out.Results[k] = v
		}
		if run.done || ctx.Err() != nil {
			return out
		}
		culprit := run.current
		if culprit == "" {
			out.Stop = EndedEarly
			return out
		}
		if run.watchdog == culprit || res.TimedOut {
			out.Results[culprit] = Result{Status: snapshot.StatusTimeout, Err: fmt.Sprintf("%s within %s; the %s was killed",
				words(spec.Action, "did not finish"), spec.Timeout, orWord(spec.Process, "process"))}
		} else {
			out.Results[culprit] = Result{Status: snapshot.StatusCrash, Err: out.Ending}
		}
		// Each restart starts after the culprit, so the plan shrinks; the
		// bound only guards against a process that reports parts twice.
		i := slices.Index(todo, culprit)
		if i < 0 || i+1 >= len(todo) || attempt >= planned {
			return out
		}
		todo, restart = todo[i+1:], true
	}
}

// Describe says how a process ended, with the last line of its stderr.
func Describe(process string, res sandbox.Result, stderr string) string {
	var s string
	switch {
	case res.Signal != "":
		s = "killed by " + res.Signal
	case res.TimedOut:
		s = "killed after a timeout"
	default:
		s = fmt.Sprintf("exited with status %d", res.ExitCode)
	}
	s = words(process, s)
	if stderr != "" {
		s += ": " + stderr
	}
	return s
}

func words(first, rest string) string {
	if first == "" {
		return rest
	}
	return first + " " + rest
}

func orWord(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// event is one line of the protocol; a hello line is decoded again as H.
type event struct {
	T string `json:"t"`
	M string `json:"m"`
	E string `json:"e"`
	D string `json:"d"`
}

// process is the state of one probe process, fed by its output.
type process[H any] struct {
	action   string
	mu       sync.Mutex
	line     []byte
	hello    *H
	current  string
	started  time.Time
	results  map[string]Result
	done     bool
	watchdog string // the part the watchdog killed the process for
	stderr   *tail
}

func (s *process[H]) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.line = append(s.line, p...)
	for {
		i := bytes.IndexByte(s.line, '\n')
		if i < 0 {
			break
		}
		var ev event
		if json.Unmarshal(s.line[:i], &ev) == nil {
			s.handle(&ev, s.line[:i])
		}
		s.line = s.line[i+1:]
	}
	return len(p), nil
}

func (s *process[H]) handle(ev *event, line []byte) {
	switch ev.T {
	case "hello":
		var h H
		if json.Unmarshal(line, &h) == nil {
			s.hello = &h
		}
	case "start":
		s.current, s.started = ev.M, time.Now()
	case "ok":
		s.results[ev.M] = Result{Status: snapshot.StatusOK, Detail: ev.D}
		s.current = ""
	case "err":
		s.results[ev.M] = Result{Status: snapshot.StatusImportError, Err: ev.E}
		s.current = ""
	case "timeout":
		s.results[ev.M] = Result{Status: snapshot.StatusTimeout, Err: words(s.action, "did not finish within the time limit")}
		s.current = ""
	case "done":
		s.done = true
	}
}

func runOnce[H any](ctx context.Context, r source.Runner, spec Spec[H], parts []string, restart bool) (*process[H], sandbox.Result, error) {
	run := &process[H]{action: spec.Action, results: map[string]Result{}, stderr: &tail{}}
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
			case run.hello == nil && time.Since(began) > startupLimit:
				cancel()
			case run.current != "" && time.Since(run.started) > spec.Timeout+grace:
				run.watchdog = run.current
				cancel()
			}
			run.mu.Unlock()
		}
	}()
	cmd := spec.Command(parts, restart)
	cmd.Stdout, cmd.Stderr, cmd.MaxOutput = run, run.stderr, spec.MaxOutput
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	res, err := r.Run(runCtx, cmd)
	run.mu.Lock()
	defer run.mu.Unlock()
	return run, res, err
}

// tail keeps the last bytes written to it: the end of stderr is the
// evidence when a process dies.
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
