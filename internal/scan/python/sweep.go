package python

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/internal/cpython"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/sweep"
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

// maxSweepOutput bounds the sweep's output: a full stdlib with errors.
const maxSweepOutput = 16 << 20

// sweepHello is the sweep's hello line: the interpreter's own version, its
// built-in modules, the stdlib it knows, and the order it imports in.
type sweepHello struct {
	Version  string   `json:"version"`
	Builtins []string `json:"builtins"`
	Stdlib   []string `json:"stdlib"`
	Plan     []string `json:"plan"`
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

	flags := []string{"-I", "-S", "-B"}
	if strings.HasPrefix(in.xy, "2.") || in.xy == "3.0" || in.xy == "3.1" || in.xy == "3.2" || in.xy == "3.3" {
		flags = []string{"-E", "-s", "-S", "-B"}
	}
	secs := int(math.Ceil(f.opts.ModuleTimeout.Seconds()))
	o := sweep.Run(ctx, t.Runner, sweep.Spec[sweepHello]{
		Command: func(list []string, restart bool) sandbox.Command {
			// The first process imports all it was given but the skips;
			// a restart imports only the rest of its plan.
			mode := "full"
			if restart {
				mode = "only"
			}
			args := append(slices.Clone(flags), "-c", sweepScript, fmt.Sprint(max(secs, 1)), mode)
			return sandbox.Command{
				Path: exe,
				Args: append(args, list...),
				Env:  []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent", "LANG=C.UTF-8", "TERM=dumb"},
				Dir:  "/",
			}
		},
		Parts:     append(skips, names...),
		Plan:      func(h *sweepHello) []string { return h.Plan },
		Timeout:   f.opts.ModuleTimeout,
		MaxOutput: maxSweepOutput,
		Action:    "import",
		Process:   "interpreter",
	})
	switch o.Stop {
	case sweep.NotRun:
		return "", []string{fmt.Sprintf("python %s: import sweep not run, statuses are from files only: %v", in.prefix, o.Err)}
	case sweep.NotStarted:
		return "", []string{fmt.Sprintf("python %s: import sweep did not start (%s), statuses are from files only", in.prefix, o.Ending)}
	case sweep.EndedEarly:
		return o.Hello.Version, []string{fmt.Sprintf("python %s: import sweep ended early (%s); modules after that keep their static status", in.prefix, o.Ending)}
	}
	a.merge(mods, o.Results, o.Hello)
	return o.Hello.Version, nil
}

// merge puts the real import results over the static ones. A module that
// the installation does not ship and that Python cannot find is missing;
// one that ships and fails is an import error, keeping the static evidence
// of missing libraries.
func (a *analysis) merge(mods map[string]*snapshot.Module, results map[string]sweep.Result, hello *sweepHello) {
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
		switch r.Status {
		case snapshot.StatusOK:
			m.Status, m.Error, m.MissingLibraries = snapshot.StatusOK, "", nil
			if m.Kind == "" {
				m.Kind = kindBuiltin // frozen or built in under another name
			}
		case snapshot.StatusImportError:
			if !shipped && r.Err == a.noModule(name) {
				m.Status, m.Error = snapshot.StatusMissing, r.Err
				continue
			}
			m.Status, m.Error = snapshot.StatusImportError, r.Err
			if v := a.static[name]; v != nil {
				m.MissingLibraries = v.libs
			}
		default:
			m.Status, m.Error = r.Status, r.Err
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
