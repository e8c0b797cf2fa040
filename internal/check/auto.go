package check

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/cpython"
	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/version"
)

// distroOptional names the Debian/Ubuntu package that ships a standard
// library module the distribution split out of its core Python packages
// (checked against Debian 12 with dpkg -L and apt-cache show). It only words
// the note for a distribution's Python: any module such a Python lacks is
// reported as not installed, never as a failure, because the package
// manager, not the image build, decides what the distribution ships.
var distroOptional = map[string]string{
	"tkinter":    "python3-tk",
	"_tkinter":   "python3-tk",
	"_gdbm":      "python3-gdbm",
	"idlelib":    "idle-python3.X",
	"turtledemo": "python3.X-examples",
	"ensurepip":  "python3.X-venv",
	"distutils":  "python3-distutils",
	"lib2to3":    "python3-lib2to3",
	"test":       "libpython3.X-testsuite",
}

// distroPackage names the package that ships module for a distribution's
// Python major.minor, or "". CPython 3.12 dropped distutils; Debian 13 still
// ships _distutils_system_mod in libpython3.13-stdlib, and there distutils
// comes from setuptools (checked with dpkg -S on a Debian 13 image).
func distroPackage(module, mm string) string {
	p, ok := distroOptional[module]
	if !ok {
		return ""
	}
	if module == "distutils" && version.Compare(version.PEP440, mm, "3.12") >= 0 {
		p = "python3-setuptools"
	}
	return strings.ReplaceAll(p, "3.X", "3."+strings.TrimPrefix(mm, "3."))
}

// failing are module statuses that mean the module's files are there but it
// does not work: always a failure, whoever built the Python (the 2019 case:
// Lib/sqlite3/ present, _sqlite3 absent).
var failing = map[string]bool{
	snapshot.StatusBroken:      true,
	snapshot.StatusImportError: true,
	snapshot.StatusCrash:       true,
	snapshot.StatusTimeout:     true,
}

// automatic is the evidence that needs no configuration. folded maps the ID
// of each failure shown only as another result's cause (_sqlite3) to the ID
// of that result (sqlite3), so that a baseline change of either joins it.
func automatic(snap *snapshot.Snapshot, ch *diff.Changes) (out []Result, folded map[string]string) {
	folded = map[string]string{}
	ids := runtimeIDs(snap.Runtimes)
	order := make([]int, len(snap.Runtimes))
	for i := range order {
		order[i] = i
	}
	// 3.6 before 3.10: runtimes in version order, as people read them.
	slices.SortStableFunc(order, func(a, b int) int {
		ra, rb := &snap.Runtimes[a], &snap.Runtimes[b]
		return cmp.Or(cmp.Compare(ra.Kind, rb.Kind),
			version.Compare(version.PEP440, version.MajorMinor(ra.Version), version.MajorMinor(rb.Version)),
			cmp.Compare(ra.Path, rb.Path))
	})
	pythons := 0
	for _, i := range order {
		rt := &snap.Runtimes[i]
		if rt.Kind == snapshot.RuntimePython {
			pythons++
			out = append(out, pythonModules(rt, ids[i], ch, folded)...)
		} else if len(rt.Modules) > 0 {
			out = append(out, runtimeParts(rt, ids[i], ch)...)
		}
	}
	if pythons > 0 && snap.Exec == snapshot.ExecNone {
		out = append(out, Result{ID: "snapshot/exec", Origin: OriginAutomatic, Kind: "snapshot", Status: StatusInfo,
			Message: "modules were checked without execution (--exec none): files and shared libraries only, not the import itself"})
	}
	out = append(out, toolProbes(snap.Tools, ch)...)
	for _, w := range snap.Warnings {
		out = append(out, Result{ID: "snapshot/warning", Origin: OriginAutomatic, Kind: "snapshot", Status: StatusInfo, Message: w})
	}
	return out, folded
}

// runtimeIDs gives each runtime the identity diff matches it by
// (runtime/python@3.7, or with its install root when the image holds two of
// one series), so that one changes file serves both.
func runtimeIDs(rts []snapshot.Runtime) []string { return diff.RuntimeIDs(rts) }

// builtFromSource is true for runtimes an image build compiled or unpacked
// itself; a distribution's own Python is "os-package".
func builtFromSource(rt *snapshot.Runtime) bool { return rt.Origin != snapshot.OriginOSPackage }

// distributionPython is true for a Python the distribution's own Python
// packages own (python3.11-minimal, libpython3.11-stdlib, python3-libs),
// for which distroOptional's packages exist; not for one another package
// bundles (the Google Cloud SDK's, owned by google-cloud-cli), which no
// distribution package completes. An unknown owner counts as the
// distribution's.
func distributionPython(rt *snapshot.Runtime) bool {
	owner, _, _ := strings.Cut(rt.OwnerPackage, ":")
	return owner == "" || strings.HasPrefix(owner, "python") || strings.HasPrefix(owner, "libpython")
}

func pythonModules(rt *snapshot.Runtime, id string, ch *diff.Changes, foldedInto map[string]string) []Result {
	var out []Result
	title := fmt.Sprintf("python %s at %s", rt.Version, rt.Path)
	if rt.Origin != "" {
		title += " (" + rt.Origin + ")"
	}
	seen := make(map[string]bool, len(rt.Modules))
	ok := 0
	var notInstalled []string
	add := func(r Result) {
		r.Origin, r.Kind = OriginAutomatic, "module"
		if r.Name == "" {
			r.Name = title
		}
		out = append(out, r)
	}
	// Failures are gathered first so that a module missing only because
	// another one needs it ("No module named '_sqlite3'") is shown as that
	// module's evidence, not as a second failure: one cause, one line.
	type failure struct {
		module string
		res    Result
		cause  bool // the module is absent, rather than broken
	}
	var fails []failure
	missing := func(name, evidence string) {
		if !builtFromSource(rt) {
			notInstalled = append(notInstalled, name)
			return
		}
		fails = append(fails, failure{module: name, cause: true,
			res: Result{ID: id + "/module/" + name, Status: StatusFail, Message: "missing: " + evidence}})
	}
	okModules := make(map[string]bool, len(rt.Modules))
	for _, m := range rt.Modules {
		seen[m.Name] = true
		okModules[m.Name] = m.Status == snapshot.StatusOK
		if cpython.PlatformOnly(m.Name) {
			continue
		}
		switch {
		case m.Status == snapshot.StatusOK:
			ok++
		case m.Status == snapshot.StatusMissing:
			missing(m.Name, cmp.Or(m.Error, "not shipped by this build"))
		case m.Status == snapshot.StatusImportError && cpython.IsModuleNotFound(m.Error, m.Name):
			// Importing a module with no files at all: absent, not broken.
			missing(m.Name, m.Error)
		default:
			msg := m.Status
			if !failing[m.Status] {
				msg = "unknown status " + strconv.Quote(m.Status)
			}
			var ev []string
			if len(m.MissingLibraries) > 0 {
				msg += ": missing shared " + report.Plural(len(m.MissingLibraries), "library", "libraries") + " " + strings.Join(m.MissingLibraries, ", ")
				if m.Error != "" {
					ev = append(ev, m.Error)
				}
			} else if m.Error != "" {
				msg += ": " + report.FirstLine(m.Error)
				if rest := report.RestLines(m.Error); rest != "" {
					ev = append(ev, rest)
				}
			}
			fails = append(fails, failure{module: m.Name,
				res: Result{ID: id + "/module/" + m.Name, Status: StatusFail, Message: msg, Evidence: ev}})
		}
	}
	expected, known := cpython.ExpectedModules(version.MajorMinor(rt.Version))
	for _, name := range expected {
		if seen[name] || cpython.PlatformOnly(name) {
			continue
		}
		missing(name, "not in the snapshot, though CPython "+version.MajorMinor(rt.Version)+" ships it on Linux")
	}
	slices.Sort(notInstalled)
	var needs []string // evidence: "turtle: needs tkinter, in python3-tk"
	if !builtFromSource(rt) {
		// A distribution's module that fails only because it needs one the
		// distribution left out (Debian's turtle needs tkinter, from
		// python3-tk; Debian 13's _distutils_system_mod needs distutils,
		// from python3-setuptools, which CPython no longer ships) is as
		// intended as the missing module itself. Only modules the
		// distribution is known to ship separately qualify: any other
		// missing import is a failure.
		absent := slices.Clone(notInstalled)
		for name := range distroOptional {
			if !okModules[name] && !slices.Contains(absent, name) {
				absent = append(absent, name)
			}
		}
		slices.Sort(absent)
		kept := fails[:0]
		for _, f := range fails {
			need := neededFrom(f.res, absent)
			if need == "" {
				// Debian 12 keeps a stub distutils package in the
				// standard library and ships distutils.sysconfig and the
				// rest in python3-distutils.
				need = neededSubmodule(f.res)
			}
			if need != "" && !f.cause {
				notInstalled = append(notInstalled, f.module+" (needs "+need+")")
				line := f.module + ": needs " + need
				if p := distroPackage(need, version.MajorMinor(rt.Version)); p != "" {
					line += ", which " + p + " provides"
				}
				needs = append(needs, line)
				continue
			}
			kept = append(kept, f)
		}
		fails = kept
	}
	byName := make(map[string]int, len(fails))
	var causes []string
	for i, f := range fails {
		byName[f.module] = i
		if f.cause {
			causes = append(causes, f.module)
		}
	}
	slices.Sort(causes)
	folded := make([]bool, len(fails))
	for i := range fails {
		f := &fails[i]
		if f.cause {
			continue
		}
		if name := neededFrom(f.res, causes); name != "" {
			j := byName[name]
			f.res.Evidence = append(f.res.Evidence, "cause: "+name+" "+fails[j].res.Message)
			folded[j] = true
			foldedInto[fails[j].res.ID] = f.res.ID
		}
	}
	slices.SortStableFunc(fails, func(a, b failure) int { return cmp.Compare(a.module, b.module) })
	for i := range fails {
		if folded[byName[fails[i].module]] {
			continue
		}
		r := fails[i].res
		r.declareAs = diff.ActionFor(diff.ClassBroken)
		if fails[i].cause {
			declare(&r, ch, diff.ClassRemoved, diff.ClassBroken)
		} else {
			declare(&r, ch, diff.ClassBroken)
		}
		add(r)
	}
	if len(notInstalled) > 0 {
		why := "the distribution ships them in optional packages"
		var ev []string
		if distributionPython(rt) {
			for _, n := range notInstalled {
				if p := distroPackage(n, version.MajorMinor(rt.Version)); p != "" {
					ev = append(ev, n+": in "+p)
				}
			}
		} else {
			why = "package " + rt.OwnerPackage + ", which ships this Python, leaves them out"
		}
		ev = append(ev, needs...)
		add(Result{ID: id + "/modules/not-installed", Status: StatusInfo,
			Message:  "not installed (" + why + "): " + strings.Join(notInstalled, ", "),
			Evidence: ev})
	}
	if !known {
		add(Result{ID: id + "/modules/expected", Status: StatusInfo,
			Message: "no expected module list for CPython " + version.MajorMinor(rt.Version) + "; only the modules the scan found were checked"})
	}
	add(Result{ID: id + "/modules", Status: StatusPass, Message: fmt.Sprintf("%d standard-library %s ok at %s", ok, report.Plural(ok, "module", "modules"), rt.Path)})
	return out
}

func toolProbes(tools []snapshot.Tool, ch *diff.Changes) []Result {
	var out []Result
	probed := 0
	idx := make([]int, len(tools))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(tools[a].Name, tools[b].Name), cmp.Compare(tools[a].Path, tools[b].Path))
	})
	for _, i := range idx {
		t := &tools[i]
		switch t.Status {
		case "":
			continue
		case snapshot.StatusOK:
			probed++
			continue
		}
		probed++
		msg := "version probe " + t.Status
		if t.Status == snapshot.StatusFailed || t.Status == snapshot.StatusTimeout {
			if t.Error != "" {
				msg += ": " + report.FirstLine(t.Error)
			}
		} else {
			msg = "unknown probe status " + strconv.Quote(t.Status)
		}
		r := Result{ID: "tool/" + t.Name, Origin: OriginAutomatic, Kind: "tool", Status: StatusFail, Name: t.Path, Message: msg}
		if rest := report.RestLines(t.Error); rest != "" {
			r.Evidence = []string{rest}
		}
		r.declareAs = diff.ActionFor(diff.ClassBroken)
		declare(&r, ch, diff.ClassBroken)
		out = append(out, r)
	}
	if probed > 0 {
		out = append(out, Result{ID: "tool", Origin: OriginAutomatic, Kind: "tool", Status: StatusPass,
			Message: fmt.Sprintf("%d of %d probed %s answered", probed-len(out), probed, report.Plural(probed, "tool", "tools"))})
	}
	return out
}

// declare turns a failure into a declared change when the changes file
// declares a change of one of classes for its ID, with diff's own matching.
func declare(r *Result, ch *diff.Changes, classes ...string) {
	if ch == nil {
		return
	}
	for _, d := range ch.Declarations {
		for _, class := range classes {
			if d.Covers(class, r.ID) {
				r.Status = StatusDeclared
				r.Reason = d.Reason
				if r.Reason == "" {
					r.Reason = fmt.Sprintf("%s %s (%s:%d)", d.Action, d.Pattern, d.File, d.Line)
				}
				return
			}
		}
	}
}

// neededFrom returns the first of names (sorted) that r's error says is
// missing ("No module named 'tkinter'"), or "".
func neededFrom(r Result, names []string) string {
	text := r.Message + "\n" + strings.Join(r.Evidence, "\n")
	for _, n := range names {
		if cpython.ReportsMissing(text, n) {
			return n
		}
	}
	return ""
}

// neededSubmodule returns the module of distroOptional whose submodule r's
// error says is missing ("No module named 'distutils.sysconfig'"), or "".
func neededSubmodule(r Result) string {
	text := r.Message + "\n" + strings.Join(r.Evidence, "\n")
	for _, n := range slices.Sorted(maps.Keys(distroOptional)) {
		if strings.Contains(text, "No module named '"+n+".") {
			return n
		}
	}
	return ""
}
