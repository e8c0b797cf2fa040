package python

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/cpython"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

//go:embed sweep.py
var sweepScript string

// skipImport are modules the sweep never imports because importing them
// acts beyond the interpreter; they keep their static status.
var skipImport = map[string]string{
	"antigravity": "opens a web browser",
	"__main__":    "is the sweep script itself",
}

// SkipImport reports whether the import sweep leaves a module alone, and
// why: antigravity (opens a web browser) and __main__ (the sweep itself).
// Everything else is imported, output to stdout included (this, __hello__),
// since the sweep keeps its protocol on a private descriptor; tkinter and
// turtle only import, they open no window until asked.
func SkipImport(name string) (reason string, skip bool) {
	reason, skip = skipImport[name]
	return reason, skip
}

const (
	// startupLimit bounds how long an interpreter may take to say hello.
	startupLimit = 30 * time.Second
	// watchdogGrace is added to the per-module limit before the process is
	// killed: signal.alarm inside normally ends a slow import first.
	watchdogGrace  = 2 * time.Second
	maxSweepOutput = 16 << 20
)

type sweepEvent struct {
	T        string   `json:"t"`
	M        string   `json:"m"`
	E        string   `json:"e"`
	Version  string   `json:"version"`
	Builtins []string `json:"builtins"`
	Stdlib   []string `json:"stdlib"`
	Plan     []string `json:"plan"`
}

type importResult struct {
	status, err string
}

// sweepRun is the state of one interpreter process, fed by its output.
type sweepRun struct {
	mu       sync.Mutex
	line     []byte
	hello    *sweepEvent
	current  string
	started  time.Time
	results  map[string]importResult
	done     bool
	watchdog string // the module the watchdog killed the process for
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
		s.results[ev.M] = importResult{status: snapshot.StatusOK}
		s.current = ""
	case "err":
		s.results[ev.M] = importResult{status: snapshot.StatusImportError, err: ev.E}
		s.current = ""
	case "timeout":
		s.results[ev.M] = importResult{status: snapshot.StatusTimeout, err: "import did not finish within the time limit"}
		s.current = ""
	case "done":
		s.done = true
	}
}

// tail keeps the last bytes written to it: the end of stderr is the
// evidence when an interpreter dies.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-2048:]...)
	}
	return len(p), nil
}

func (t *tail) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// sweep imports every module of the installation in one interpreter
// process, restarting after a module that crashes or hangs it, and merges
// the results into mods. It returns the interpreter's own version.
func (f *Finder) sweep(ctx context.Context, t *source.Tree, in *install, exe string, mods map[string]*snapshot.Module, a *analysis) (string, []string) {
	var names, skips []string
	for name := range mods {
		if _, skip := skipImport[name]; skip {
			continue
		}
		if cpython.PlatformOnly(name) {
			continue
		}
		names = append(names, name)
	}
	for name := range skipImport {
		skips = append(skips, "!"+name)
	}
	for _, name := range cpython.PlatformOnlyModules() {
		skips = append(skips, "!"+name)
	}
	slices.Sort(names)
	slices.Sort(skips)

	results := map[string]importResult{}
	var hello *sweepEvent
	list, mode := append(skips, names...), "full"
	var plan []string
	for attempt := 0; ; attempt++ {
		run, res, err := f.runSweep(ctx, t, in, exe, mode, list)
		if err != nil {
			return "", []string{fmt.Sprintf("python %s: import sweep not run, statuses are from files only: %v", in.prefix, err)}
		}
		if hello == nil {
			if run.hello == nil {
				return "", []string{fmt.Sprintf("python %s: import sweep did not start (%s), statuses are from files only", in.prefix, describe(res, run.stderr.lastLine()))}
			}
			hello, plan = run.hello, run.hello.Plan
		}
		for k, v := range run.results {
			results[k] = v
		}
		if run.done || ctx.Err() != nil {
			break
		}
		culprit := run.current
		if culprit == "" {
			return hello.Version, []string{fmt.Sprintf("python %s: import sweep ended early (%s); modules after that keep their static status", in.prefix, describe(res, run.stderr.lastLine()))}
		}
		if run.watchdog == culprit || res.TimedOut {
			results[culprit] = importResult{status: snapshot.StatusTimeout, err: fmt.Sprintf("import did not finish within %s; the interpreter was killed", f.opts.ModuleTimeout)}
		} else {
			results[culprit] = importResult{status: snapshot.StatusCrash, err: describe(res, run.stderr.lastLine())}
		}
		i := slices.Index(plan, culprit)
		if i < 0 || i+1 >= len(plan) || attempt > len(plan) {
			break
		}
		plan = plan[i+1:]
		list, mode = plan, "only"
	}
	a.merge(mods, results, hello)
	return hello.Version, nil
}

type sweepRunState struct {
	*sweepRun
	stderr *tail
}

func (f *Finder) runSweep(ctx context.Context, t *source.Tree, in *install, exe, mode string, list []string) (*sweepRunState, sandbox.Result, error) {
	run := &sweepRunState{sweepRun: &sweepRun{results: map[string]importResult{}}, stderr: &tail{}}
	flags := []string{"-I", "-S", "-B"}
	if strings.HasPrefix(in.xy, "2.") || in.xy == "3.0" || in.xy == "3.1" || in.xy == "3.2" || in.xy == "3.3" {
		flags = []string{"-E", "-s", "-S", "-B"}
	}
	secs := int(math.Ceil(f.opts.ModuleTimeout.Seconds()))
	args := append(flags, "-c", sweepScript, fmt.Sprint(max(secs, 1)), mode)
	args = append(args, list...)

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
			case run.current != "" && time.Since(run.started) > f.opts.ModuleTimeout+watchdogGrace:
				run.watchdog = run.current
				cancel()
			}
			run.mu.Unlock()
		}
	}()
	res, err := t.Runner.Run(runCtx, sandbox.Command{
		Path:      exe,
		Args:      args,
		Env:       []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent", "LANG=C.UTF-8", "TERM=dumb"},
		Dir:       "/",
		Stdout:    run.sweepRun,
		Stderr:    run.stderr,
		MaxOutput: maxSweepOutput,
	})
	run.mu.Lock()
	defer run.mu.Unlock()
	return run, res, err
}

func describe(res sandbox.Result, stderr string) string {
	var s string
	switch {
	case res.Signal != "":
		s = "interpreter killed by " + res.Signal
	case res.TimedOut:
		s = "interpreter killed after a timeout"
	default:
		s = fmt.Sprintf("interpreter exited with status %d", res.ExitCode)
	}
	if stderr != "" {
		s += ": " + stderr
	}
	return s
}

// merge puts the real import results over the static ones. A module that
// the installation does not ship and that Python cannot find is missing;
// one that ships and fails is an import error, keeping the static evidence
// of missing libraries.
func (a *analysis) merge(mods map[string]*snapshot.Module, results map[string]importResult, hello *sweepEvent) {
	builtins := map[string]bool{}
	for _, b := range hello.Builtins {
		builtins[b] = true
	}
	for name, r := range results {
		if cpython.PlatformOnly(name) {
			continue
		}
		m := mods[name]
		if m == nil {
			m = &snapshot.Module{Name: name}
			mods[name] = m
		}
		shipped := m.Kind != "" && m.Status != snapshot.StatusMissing
		if builtins[name] {
			m.Kind = kindBuiltin
			shipped = true
		}
		switch r.status {
		case snapshot.StatusOK:
			m.Status, m.Error, m.MissingLibraries = snapshot.StatusOK, "", nil
			if m.Kind == "" {
				m.Kind = kindBuiltin // frozen or built in under another name
			}
		case snapshot.StatusImportError:
			if !shipped && r.err == a.noModule(name) {
				m.Status, m.Error = snapshot.StatusMissing, r.err
				continue
			}
			m.Status, m.Error = snapshot.StatusImportError, r.err
			if v := a.static[name]; v != nil {
				m.MissingLibraries = v.libs
			}
		default:
			m.Status, m.Error = r.status, r.err
		}
	}
	for _, name := range hello.Stdlib {
		if _, ok := mods[name]; !ok && !cpython.PlatformOnly(name) {
			if _, skip := skipImport[name]; !skip {
				mods[name] = &snapshot.Module{Name: name, Status: snapshot.StatusMissing, Error: a.noModule(name)}
			}
		}
	}
}
