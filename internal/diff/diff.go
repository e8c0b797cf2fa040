// Package diff compares two snapshots of an image and decides whether the
// differences were meant: removed, downgraded and newly broken entries fail
// the gate unless a changes file declares them.
//
// Entries are matched by identity, not by exact version, so that 3.8.18 →
// 3.8.20 is an upgrade of python@3.8 rather than a removal and an addition.
// The identities and the JSON report are documented in SCHEMA.md.
package diff

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/cpython"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/version"
)

// SchemaV1 identifies the JSON form of a Report.
const SchemaV1 = "imagegate/diff/v1"

// Classes of change.
const (
	ClassAdded      = "added"
	ClassRemoved    = "removed"
	ClassUpgraded   = "upgraded"
	ClassDowngraded = "downgraded"
	// ClassBroken: a module or tool that worked ("ok") no longer does.
	ClassBroken = "broken"
	// ClassFixed: a module or tool that did not work now does.
	ClassFixed = "fixed"
	// ClassChanged: different, but neither better nor worse in the
	// ecosystem's order (e.g. "1.0" → "1.0.0" in PEP 440, or one failure
	// status replaced by another). Never fails, cannot be declared.
	ClassChanged = "changed"
)

// Sections group changes the way release notes do; they are also the order
// of the report.
const (
	SectionOS              = "os"
	SectionPackages        = "packages"
	SectionRuntimes        = "runtimes"
	SectionModules         = "modules"
	SectionRuntimePackages = "runtime-packages"
	SectionTools           = "tools"
)

// Sections lists every section in report order.
var Sections = []string{SectionOS, SectionPackages, SectionRuntimes, SectionModules, SectionRuntimePackages, SectionTools}

// failing reports whether a class fails the gate when not declared.
func failing(class string) bool {
	return class == ClassRemoved || class == ClassDowngraded || class == ClassBroken
}

// Report is the outcome of comparing two snapshots; its JSON form is the
// stable contract described in SCHEMA.md.
type Report struct {
	Schema string `json:"schema"`
	// Result is "pass" or "fail".
	Result  string   `json:"result"`
	Old     Side     `json:"old"`
	New     Side     `json:"new"`
	Summary Summary  `json:"summary"`
	Changes []Change `json:"changes"`
	// Stale lists declarations that matched no change: they pass the gate
	// but should be deleted from the changes file.
	Stale    []Declaration `json:"staleDeclarations"`
	Warnings []string      `json:"warnings"`
}

// Side describes one of the two snapshots compared.
type Side struct {
	Source    string    `json:"source"`
	ScannedAt time.Time `json:"scannedAt"`
	Exec      string    `json:"exec"`
	OS        string    `json:"os,omitempty"`
}

// Summary counts the changes.
type Summary struct {
	// Unexpected counts changes that fail the gate.
	Unexpected int `json:"unexpected"`
	// Declared counts changes covered by a declaration.
	Declared int `json:"declared"`
	// Classes counts changes per class; every class is present.
	Classes map[string]int `json:"classes"`
}

// Change is one difference between the two snapshots.
type Change struct {
	// ID names the entry (see SCHEMA.md), e.g. "package/deb/libssl3:amd64"
	// or "runtime/python@3.7/module/sqlite3"; several installs of one
	// series are told apart by root: "runtime/python@3.11[/usr]".
	ID      string `json:"id"`
	Section string `json:"section"`
	Class   string `json:"class"`
	// Unexpected is true for a removed, downgraded or broken entry that no
	// declaration covers: it fails the gate.
	Unexpected bool `json:"unexpected"`
	// Old and New are the entry's state before and after; Old is absent
	// for an added entry and New for a removed one.
	Old *State `json:"old,omitempty"`
	New *State `json:"new,omitempty"`
	// Evidence explains a broken entry in the runtime's own words (the
	// import error, the failed probe's output).
	Evidence         string   `json:"evidence,omitempty"`
	MissingLibraries []string `json:"missingLibraries,omitempty"`
	// Declared is the declaration that covers the change, if any.
	Declared *Declaration `json:"declared,omitempty"`
	// PartOf names the change this one is the cause of, when a private
	// extension module broke and took a public module with it (_sqlite3
	// and sqlite3): the public one is the entry users see, carries the
	// evidence and decides the gate; this one never fails on its own.
	PartOf string `json:"partOf,omitempty"`
}

// State is an entry's version, status and location on one side.
type State struct {
	Version string `json:"version,omitempty"`
	Status  string `json:"status,omitempty"`
	Path    string `json:"path,omitempty"`
}

// Failed reports whether any change is unexpected.
func (r *Report) Failed() bool { return r.Summary.Unexpected > 0 }

// Compare classifies every difference between old and new and applies the
// declarations in ch, which may be nil. Snapshots as returned by
// snapshot.Decode (normalized) are compared in linear time; others are
// compared on sorted copies, never modified.
func Compare(old, new *snapshot.Snapshot, ch *Changes) *Report {
	r := &Report{
		Schema: SchemaV1,
		Old:    side(old),
		New:    side(new),
	}
	c := &comparer{}
	c.os(old.OS, new.OS)
	c.packages(old.Packages, new.Packages)
	c.runtimes(old.Runtimes, new.Runtimes)
	c.tools(old.Tools, new.Tools)
	r.Changes = c.out
	slices.SortStableFunc(r.Changes, compareChanges)
	linkCauses(r.Changes)
	r.apply(ch)
	if old.Exec != new.Exec {
		r.Warnings = append(r.Warnings, fmt.Sprintf(
			"old was scanned with --exec %s and new with --exec %s: module and tool statuses rest on different evidence", cmp.Or(old.Exec, snapshot.ExecNone), cmp.Or(new.Exec, snapshot.ExecNone)))
	}
	r.Result = "pass"
	if r.Failed() {
		r.Result = "fail"
	}
	return r
}

func side(s *snapshot.Snapshot) Side {
	os := s.OS.PrettyName
	if os == "" {
		os = strings.TrimSpace(s.OS.ID + " " + s.OS.VersionID)
	}
	return Side{Source: s.Source, ScannedAt: s.ScannedAt, Exec: s.Exec, OS: os}
}

var sectionRank = func() map[string]int {
	m := map[string]int{}
	for i, s := range Sections {
		m[s] = i
	}
	return m
}()

func compareChanges(a, b Change) int {
	return cmp.Or(cmp.Compare(sectionRank[a.Section], sectionRank[b.Section]),
		cmp.Compare(a.ID, b.ID), cmp.Compare(a.Old.path(), b.Old.path()), cmp.Compare(a.New.path(), b.New.path()),
		cmp.Compare(a.Class, b.Class))
}

func (s *State) path() string {
	if s == nil {
		return ""
	}
	return s.Path
}

// apply marks declared and unexpected changes and collects stale
// declarations. The first declaration that matches a change covers it.
func (r *Report) apply(ch *Changes) {
	r.Summary.Classes = map[string]int{}
	for _, c := range []string{ClassAdded, ClassRemoved, ClassUpgraded, ClassDowngraded, ClassBroken, ClassFixed, ClassChanged} {
		r.Summary.Classes[c] = 0
	}
	var decls []Declaration
	if ch != nil {
		decls = ch.Declarations
	}
	used := make([]bool, len(decls))
	for i := range r.Changes {
		c := &r.Changes[i]
		r.Summary.Classes[c.Class]++
		for j := range decls {
			if decls[j].Covers(c.Class, c.ID) {
				used[j] = true
				d := decls[j]
				c.Declared = &d
				r.Summary.Declared++
				break
			}
		}
		if c.Declared == nil && failing(c.Class) && c.PartOf == "" {
			c.Unexpected = true
			r.Summary.Unexpected++
		}
	}
	r.Stale = []Declaration{}
	for j, u := range used {
		if !u {
			r.Stale = append(r.Stale, decls[j])
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s:%d: %s %s matched no change; remove the stale declaration",
				decls[j].File, decls[j].Line, decls[j].Action, decls[j].Pattern))
		}
	}
	r.Warnings = orEmpty(r.Warnings)
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// linkCauses marks a module that broke or went away as part of another
// module's breakage in the same runtime, when that one's error names it
// ("No module named '_sqlite3'") or it is its private extension (_ssl for
// ssl). One cause then makes one unexpected entry, with its evidence.
func linkCauses(changes []Change) {
	symptoms := map[string]int{}    // module ID -> index of its broken change
	byRuntime := map[string][]int{} // runtime ID -> indexes of its broken module changes
	for i, c := range changes {
		if c.Section == SectionModules && c.Class == ClassBroken {
			symptoms[c.ID] = i
			rt, _, _ := strings.Cut(c.ID, "/module/")
			byRuntime[rt] = append(byRuntime[rt], i)
		}
	}
	for i := range changes {
		c := &changes[i]
		if c.Section != SectionModules || (c.Class != ClassBroken && c.Class != ClassRemoved) {
			continue
		}
		rt, name, ok := strings.Cut(c.ID, "/module/")
		if !ok {
			continue
		}
		if j, ok := symptoms[rt+"/module/"+strings.TrimPrefix(name, "_")]; ok && j != i && strings.HasPrefix(name, "_") {
			c.PartOf = changes[j].ID
			continue
		}
		for _, j := range byRuntime[rt] {
			if j != i && cpython.NamesModule(changes[j].Evidence, name) {
				c.PartOf = changes[j].ID
				break
			}
		}
	}
}

// comparer accumulates changes.
type comparer struct {
	out []Change
}

func (c *comparer) add(ch Change) { c.out = append(c.out, ch) }

// versionClass classifies a version difference in scheme's order.
func versionClass(scheme version.Scheme, old, new string) string {
	switch version.Compare(scheme, old, new) {
	case -1:
		return ClassUpgraded
	case 1:
		return ClassDowngraded
	}
	return ClassChanged
}

func (c *comparer) os(old, new snapshot.OS) {
	switch {
	case old.ID == new.ID:
		if old.ID != "" && old.VersionID != new.VersionID {
			// os-release VERSION_IDs follow no one scheme across distributions.
			c.add(Change{ID: "os/" + new.ID, Section: SectionOS, Class: versionClass(version.Natural, old.VersionID, new.VersionID),
				Old: &State{Version: old.VersionID}, New: &State{Version: new.VersionID}})
		}
	default:
		if old.ID != "" {
			c.add(Change{ID: "os/" + old.ID, Section: SectionOS, Class: ClassRemoved, Old: &State{Version: old.VersionID}})
		}
		if new.ID != "" {
			c.add(Change{ID: "os/" + new.ID, Section: SectionOS, Class: ClassAdded, New: &State{Version: new.VersionID}})
		}
	}
}

// join walks two lists sorted by key and calls emit with each run of
// entries sharing a key, from old and from new (either may be empty).
func join[T any](old, new []T, key func(a, b *T) int, emit func(o, n []T)) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		var c int
		switch {
		case i == len(old):
			c = 1
		case j == len(new):
			c = -1
		default:
			c = key(&old[i], &new[j])
		}
		ie, je := i, j
		if c <= 0 {
			ie++
			for ie < len(old) && key(&old[ie], &old[i]) == 0 {
				ie++
			}
		}
		if c >= 0 {
			je++
			for je < len(new) && key(&new[je], &new[j]) == 0 {
				je++
			}
		}
		emit(old[i:ie], new[j:je])
		i, j = ie, je
	}
}

// pairUp matches entries that share an identity: first those for which
// each pass in turn holds, then the rest in order. What is left over was
// removed (gone) or added (came).
func pairUp[T any](o, n []T, passes ...func(a, b *T) bool) (pairs [][2]*T, gone, came []*T) {
	if len(o) == 1 && len(n) == 1 {
		return [][2]*T{{&o[0], &n[0]}}, nil, nil
	}
	usedO := make([]bool, len(o))
	usedN := make([]bool, len(n))
	passes = append(passes, func(a, b *T) bool { return true })
	for _, pass := range passes {
		for i := range o {
			if usedO[i] {
				continue
			}
			for j := range n {
				if !usedN[j] && pass(&o[i], &n[j]) {
					usedO[i], usedN[j] = true, true
					pairs = append(pairs, [2]*T{&o[i], &n[j]})
					break
				}
			}
		}
	}
	for i := range o {
		if !usedO[i] {
			gone = append(gone, &o[i])
		}
	}
	for j := range n {
		if !usedN[j] {
			came = append(came, &n[j])
		}
	}
	return pairs, gone, came
}

// sortedCopy returns s itself when it is already in order, else a sorted
// copy, so that Compare never reorders its caller's data.
func sortedCopy[T any](s []T, less func(a, b T) int) []T {
	if slices.IsSortedFunc(s, less) {
		return s
	}
	s = slices.Clone(s)
	slices.SortFunc(s, less)
	return s
}

func packageKey(a, b *snapshot.Package) int {
	return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Arch, b.Arch))
}

func packageOrder(a, b snapshot.Package) int {
	return cmp.Or(packageKey(&a, &b), cmp.Compare(a.Version, b.Version))
}

// PackageID is the identity of an OS package: "package/TYPE/NAME" and
// ":ARCH" when the package manager records one.
func PackageID(p *snapshot.Package) string {
	if p.Arch == "" {
		return "package/" + p.Type + "/" + p.Name
	}
	return "package/" + p.Type + "/" + p.Name + ":" + p.Arch
}

func (c *comparer) packages(old, new []snapshot.Package) {
	old = sortedCopy(old, packageOrder)
	new = sortedCopy(new, packageOrder)
	sameVersion := func(a, b *snapshot.Package) bool { return a.Version == b.Version }
	join(old, new, packageKey, func(o, n []snapshot.Package) {
		if len(o) == 1 && len(n) == 1 && o[0].Version == n[0].Version {
			return // the common case: unchanged
		}
		pairs, gone, came := pairUp(o, n, sameVersion)
		for _, p := range pairs {
			a, b := p[0], p[1]
			if a.Version == b.Version {
				continue
			}
			c.add(Change{ID: PackageID(b), Section: SectionPackages, Class: versionClass(version.SchemeForPackage(b.Type), a.Version, b.Version),
				Old: &State{Version: a.Version}, New: &State{Version: b.Version}})
		}
		for _, a := range gone {
			c.add(Change{ID: PackageID(a), Section: SectionPackages, Class: ClassRemoved, Old: &State{Version: a.Version}})
		}
		for _, b := range came {
			c.add(Change{ID: PackageID(b), Section: SectionPackages, Class: ClassAdded, New: &State{Version: b.Version}})
		}
	})
}

// RuntimeID is the identity of a runtime install: "runtime/KIND@SERIES".
// The series is major.minor (python@3.7, go@1.22, ruby@3.3, dotnet-sdk@8.0)
// except for Java and Node.js, whose release lines are majors (java@17 for
// both "17.0.15" and "1.8.0_392" → java@8; node@20).
func RuntimeID(r *snapshot.Runtime) string {
	return "runtime/" + r.Kind + "@" + series(r.Kind, r.Version)
}

func series(kind, v string) string {
	nums := leadingNumbers(v)
	if len(nums) == 0 {
		return v
	}
	switch kind {
	case snapshot.RuntimeJava:
		if nums[0] == "1" && len(nums) > 1 {
			return nums[1] // 1.8.0_392 is Java 8
		}
		return nums[0]
	case snapshot.RuntimeNode:
		return nums[0]
	}
	if len(nums) == 1 {
		return nums[0]
	}
	return nums[0] + "." + nums[1]
}

// leadingNumbers returns the dotted numbers a version starts with, after a
// "go" or "v" prefix: "go1.22.3" → [1 22 3].
func leadingNumbers(v string) []string {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "go"), "v")
	var nums []string
	for v != "" {
		i := 0
		for i < len(v) && '0' <= v[i] && v[i] <= '9' {
			i++
		}
		if i == 0 {
			break
		}
		n, err := strconv.ParseUint(v[:i], 10, 64)
		if err != nil {
			break
		}
		nums = append(nums, strconv.FormatUint(n, 10))
		if i == len(v) || v[i] != '.' {
			break
		}
		v = v[i+1:]
	}
	return nums
}

// RuntimeIDs gives each runtime of one snapshot its identity: RuntimeID
// where it is the only install of its series, and RuntimeID with its
// install root ("runtime/python@3.11[/opt/hostedtoolcache/Python/*/x64]")
// where the snapshot holds several (a tool-cache 3.11 beside the system's),
// so that check IDs and JUnit names are unique. Diff names them the same
// way, so one changes file serves both.
func RuntimeIDs(rts []snapshot.Runtime) []string {
	ids := make([]string, len(rts))
	bySeries := map[string][]int{}
	for i := range rts {
		ids[i] = RuntimeID(&rts[i])
		bySeries[ids[i]] = append(bySeries[ids[i]], i)
	}
	for id, idx := range bySeries {
		if len(idx) < 2 {
			continue
		}
		group := make([]*snapshot.Runtime, len(idx))
		for k, i := range idx {
			group[k] = &rts[i]
		}
		for k, root := range installRoots(group) {
			ids[idx[k]] = id + "[" + root + "]"
		}
	}
	return ids
}

// versionPart is a version inside a path element: 3.11.7, v20.10.0,
// 8.0.100, 3.13.0rc1, 17.0.9 of 17.0.9-tem.
var versionPart = regexp.MustCompile(`v?[0-9]+(\.[0-9]+)+([a-z]+[0-9]*)?`)

// MaskVersions replaces the version parts of an install root with "*", so
// that /opt/hostedtoolcache/Python/3.11.7/x64 and .../3.11.8/x64 name one
// entry: the update of an install is not a new install. An element that is
// a bare number (a JDK at /usr/lib/jvm/17) is a version too.
func MaskVersions(root string) string {
	els := strings.Split(root, "/")
	for i, el := range els {
		if bare := strings.TrimPrefix(el, "v"); bare != "" && strings.Trim(bare, "0123456789") == "" {
			els[i] = "*"
			continue
		}
		els[i] = versionPart.ReplaceAllString(el, "*")
	}
	return strings.Join(els, "/")
}

// installRoots names each install of one series by its masked root, or by
// its path where two masked roots coincide (3.11.7 and 3.11.8 side by side
// in one tool cache).
func installRoots(rs []*snapshot.Runtime) []string {
	roots := make([]string, len(rs))
	seen := map[string]int{}
	for i, r := range rs {
		roots[i] = MaskVersions(r.Path)
		seen[roots[i]]++
	}
	for i, r := range rs {
		if seen[roots[i]] > 1 {
			roots[i] = r.Path
		}
	}
	return roots
}

// install is a runtime with the root that names it within its series.
type install struct {
	rt   snapshot.Runtime
	root string
}

func installs(rs []snapshot.Runtime) []install {
	ptrs := make([]*snapshot.Runtime, len(rs))
	for i := range rs {
		ptrs[i] = &rs[i]
	}
	roots := installRoots(ptrs)
	out := make([]install, len(rs))
	for i := range rs {
		out[i] = install{rs[i], roots[i]}
	}
	return out
}

func (c *comparer) runtimes(old, new []snapshot.Runtime) {
	type group struct{ o, n []snapshot.Runtime }
	groups := map[string]*group{}
	var ids []string
	at := func(r *snapshot.Runtime) *group {
		id := RuntimeID(r)
		g := groups[id]
		if g == nil {
			g = &group{}
			groups[id] = g
			ids = append(ids, id)
		}
		return g
	}
	for _, r := range old {
		g := at(&r)
		g.o = append(g.o, r)
	}
	for _, r := range new {
		g := at(&r)
		g.n = append(g.n, r)
	}
	slices.Sort(ids)
	byPath := func(a, b snapshot.Runtime) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), version.Compare(version.SchemeForRuntime(a.Kind), a.Version, b.Version))
	}
	for _, id := range ids {
		g := groups[id]
		slices.SortFunc(g.o, byPath)
		slices.SortFunc(g.n, byPath)
		// One install of the series on each side keeps the plain ID (and
		// is paired whatever its path); several are named by their roots,
		// and paired by root first, so that the tool cache's 3.11 is
		// compared with the tool cache's and the system's with the system's.
		qualify := len(g.o) > 1 || len(g.n) > 1
		name := func(in *install) string {
			if !qualify {
				return id
			}
			return id + "[" + in.root + "]"
		}
		pairs, gone, came := pairUp(installs(g.o), installs(g.n),
			func(a, b *install) bool { return a.root == b.root },
			func(a, b *install) bool { return a.rt.Path == b.rt.Path },
			func(a, b *install) bool { return a.rt.Origin == b.rt.Origin },
		)
		for _, p := range pairs {
			c.runtime(name(p[1]), &p[0].rt, &p[1].rt)
		}
		for _, a := range gone {
			c.add(Change{ID: name(a), Section: SectionRuntimes, Class: ClassRemoved, Old: &State{Version: a.rt.Version, Path: a.rt.Path}})
		}
		for _, b := range came {
			c.add(Change{ID: name(b), Section: SectionRuntimes, Class: ClassAdded, New: &State{Version: b.rt.Version, Path: b.rt.Path}})
		}
	}
}

func moduleOrder(a, b snapshot.Module) int { return cmp.Compare(a.Name, b.Name) }

func moduleKey(a, b *snapshot.Module) int { return cmp.Compare(a.Name, b.Name) }

// runtime compares two installs of the same identity, their standard
// library module by module and their installed packages.
func (c *comparer) runtime(id string, a, b *snapshot.Runtime) {
	if a.Version != b.Version || a.Path != b.Path {
		class := versionClass(version.SchemeForRuntime(b.Kind), a.Version, b.Version)
		c.add(Change{ID: id, Section: SectionRuntimes, Class: class,
			Old: &State{Version: a.Version, Path: a.Path}, New: &State{Version: b.Version, Path: b.Path}})
	}
	join(sortedCopy(a.Modules, moduleOrder), sortedCopy(b.Modules, moduleOrder), moduleKey, func(o, n []snapshot.Module) {
		if len(o) == 1 && len(n) == 1 && o[0].Status == n[0].Status {
			return
		}
		pairs, gone, came := pairUp(o, n)
		for _, p := range pairs {
			c.module(id, b.Path, p[0], p[1])
		}
		for _, m := range gone {
			c.add(Change{ID: id + "/module/" + m.Name, Section: SectionModules, Class: ClassRemoved,
				Old: &State{Status: m.Status, Path: a.Path}})
		}
		for _, m := range came {
			c.add(Change{ID: id + "/module/" + m.Name, Section: SectionModules, Class: ClassAdded,
				New: &State{Status: m.Status, Path: b.Path}, Evidence: m.Error, MissingLibraries: m.MissingLibraries})
		}
	})
	c.runtimePackages(id, a, b)
}

func (c *comparer) module(id, path string, a, b *snapshot.Module) {
	if a.Status == b.Status {
		return
	}
	class := ClassChanged
	switch {
	case a.Status == snapshot.StatusOK:
		class = ClassBroken
	case b.Status == snapshot.StatusOK:
		class = ClassFixed
	}
	ch := Change{ID: id + "/module/" + b.Name, Section: SectionModules, Class: class,
		Old: &State{Status: a.Status, Path: path}, New: &State{Status: b.Status, Path: path}}
	if class != ClassFixed {
		ch.Evidence, ch.MissingLibraries = b.Error, b.MissingLibraries
	}
	c.add(ch)
}

// distributionName normalizes a package name the way its ecosystem
// compares them (PEP 503 for Python: case and runs of -_. do not matter).
func distributionName(kind, name string) string {
	if kind != snapshot.RuntimePython {
		return name
	}
	var sb strings.Builder
	sep := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			sep = true
			continue
		}
		if sep && sb.Len() > 0 {
			sb.WriteByte('-')
		}
		sep = false
		sb.WriteRune(r)
	}
	return sb.String()
}

func (c *comparer) runtimePackages(id string, a, b *snapshot.Runtime) {
	if len(a.Packages) == 0 && len(b.Packages) == 0 {
		return
	}
	scheme := version.SchemeForRuntime(b.Kind)
	type entry struct{ o, n []snapshot.RuntimePackage }
	byName := map[string]*entry{}
	var names []string
	at := func(kind string, p snapshot.RuntimePackage) *entry {
		k := distributionName(kind, p.Name)
		e := byName[k]
		if e == nil {
			e = &entry{}
			byName[k] = e
			names = append(names, k)
		}
		return e
	}
	for _, p := range a.Packages {
		e := at(a.Kind, p)
		e.o = append(e.o, p)
	}
	for _, p := range b.Packages {
		e := at(b.Kind, p)
		e.n = append(e.n, p)
	}
	slices.Sort(names)
	for _, name := range names {
		e := byName[name]
		pid := id + "/package/" + name
		pairs, gone, came := pairUp(e.o, e.n, func(x, y *snapshot.RuntimePackage) bool { return x.Version == y.Version })
		for _, p := range pairs {
			if p[0].Version != p[1].Version {
				c.add(Change{ID: pid, Section: SectionRuntimePackages, Class: versionClass(scheme, p[0].Version, p[1].Version),
					Old: &State{Version: p[0].Version, Path: a.Path}, New: &State{Version: p[1].Version, Path: b.Path}})
			}
		}
		for _, p := range gone {
			c.add(Change{ID: pid, Section: SectionRuntimePackages, Class: ClassRemoved, Old: &State{Version: p.Version, Path: a.Path}})
		}
		for _, p := range came {
			c.add(Change{ID: pid, Section: SectionRuntimePackages, Class: ClassAdded, New: &State{Version: p.Version, Path: b.Path}})
		}
	}
}

func toolOrder(a, b snapshot.Tool) int {
	return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Path, b.Path))
}

func toolKey(a, b *snapshot.Tool) int { return cmp.Compare(a.Name, b.Name) }

func (c *comparer) tools(old, new []snapshot.Tool) {
	old = sortedCopy(old, toolOrder)
	new = sortedCopy(new, toolOrder)
	join(old, new, toolKey, func(o, n []snapshot.Tool) {
		pairs, gone, came := pairUp(o, n, func(a, b *snapshot.Tool) bool { return a.Path == b.Path })
		for _, p := range pairs {
			c.tool(p[0], p[1])
		}
		for _, t := range gone {
			c.add(Change{ID: "tool/" + t.Name, Section: SectionTools, Class: ClassRemoved,
				Old: &State{Version: t.Version, Status: t.Status, Path: t.Path}})
		}
		for _, t := range came {
			c.add(Change{ID: "tool/" + t.Name, Section: SectionTools, Class: ClassAdded,
				New: &State{Version: t.Version, Status: t.Status, Path: t.Path}, Evidence: t.Error})
		}
	})
}

func (c *comparer) tool(a, b *snapshot.Tool) {
	id := "tool/" + b.Name
	oldS := &State{Version: a.Version, Status: a.Status, Path: a.Path}
	newS := &State{Version: b.Version, Status: b.Status, Path: b.Path}
	if a.Version != "" && b.Version != "" && a.Version != b.Version {
		// Natural order, unlike check's tool constraints
		// (version.SchemeForTool): the two differ on pre-releases
		// ("1.0.0-rc1" sorts after "1.0.0" here), and diff's verdicts
		// must not change under its users.
		c.add(Change{ID: id, Section: SectionTools, Class: versionClass(version.Natural, a.Version, b.Version), Old: oldS, New: newS})
	}
	// A tool without a probe ("" status) has no evidence either way.
	if a.Status == "" || b.Status == "" || a.Status == b.Status {
		return
	}
	switch {
	case a.Status == snapshot.StatusOK:
		c.add(Change{ID: id, Section: SectionTools, Class: ClassBroken, Old: oldS, New: newS, Evidence: b.Error})
	case b.Status == snapshot.StatusOK:
		c.add(Change{ID: id, Section: SectionTools, Class: ClassFixed, Old: oldS, New: newS})
	default:
		c.add(Change{ID: id, Section: SectionTools, Class: ClassChanged, Old: oldS, New: newS, Evidence: b.Error})
	}
}
