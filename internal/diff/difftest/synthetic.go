// Package difftest makes large synthetic snapshot pairs for the diff
// benchmark (BenchmarkCompare1M and bench/diff-1m), so that both measure
// the same input.
package difftest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/imagegate/imagegate/internal/snapshot"
)

// Size says how big a synthetic pair is.
type Size struct {
	Packages          int     // OS packages
	Runtimes          int     // Python runtimes
	ModulesPerRuntime int     // stdlib modules per runtime
	Tools             int     // tools on PATH
	ChangeRate        float64 // share of entries that differ, e.g. 0.01
}

// OneMillion is the acceptance size: 300k packages and 700k modules.
var OneMillion = Size{Packages: 300_000, Runtimes: 50, ModulesPerRuntime: 14_000, Tools: 2_000, ChangeRate: 0.01}

// Entries is the number of packages, modules and tools in each snapshot.
func (s Size) Entries() int { return s.Packages + s.Runtimes*s.ModulesPerRuntime + s.Tools }

// Pair returns an old and a new snapshot of the given size that differ in
// about ChangeRate of their entries: upgrades, downgrades, removals,
// additions, broken and fixed modules. The same size always gives the same
// pair.
func Pair(s Size) (old, new *snapshot.Snapshot) {
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old = &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/synthetic/old", ScannedAt: at, Exec: snapshot.ExecLocal,
		Scanner: snapshot.Scanner{Name: "imagegate", Version: "bench"},
		OS:      snapshot.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}}
	new = &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:/synthetic/new", ScannedAt: at.Add(time.Hour), Exec: snapshot.ExecLocal,
		Scanner: old.Scanner, OS: old.OS}
	changed := func() bool { return rng.Float64() < s.ChangeRate }

	for i := range s.Packages {
		p := snapshot.Package{Type: snapshot.PackageDeb, Name: fmt.Sprintf("lib-synthetic-%07d", i), Version: fmt.Sprintf("%d.%d.%d-%d+deb12u1", i%7, i%13, i%101, 1+i%3), Arch: "amd64"}
		old.Packages = append(old.Packages, p)
		if !changed() {
			new.Packages = append(new.Packages, p)
			continue
		}
		switch rng.IntN(4) {
		case 0: // upgraded
			p.Version = fmt.Sprintf("%d.%d.%d-%d+deb12u2", i%7, i%13, i%101, 1+i%3)
			new.Packages = append(new.Packages, p)
		case 1: // downgraded
			p.Version = fmt.Sprintf("%d.%d.%d-%d~bpo12", i%7, i%13, i%101, 1+i%3)
			new.Packages = append(new.Packages, p)
		case 2: // removed
		case 3: // added next to it
			new.Packages = append(new.Packages, p)
			p.Name += "-extra"
			new.Packages = append(new.Packages, p)
		}
	}
	for r := range s.Runtimes {
		minor := r % 12
		path := fmt.Sprintf("/opt/hostedtoolcache/Python/3.%d.%d/x64-%03d", minor, r, r)
		o := snapshot.Runtime{Kind: snapshot.RuntimePython, Version: fmt.Sprintf("3.%d.%d", minor, r), Path: path, Origin: snapshot.OriginToolcache}
		n := o
		if changed() {
			n.Version = fmt.Sprintf("3.%d.%d", minor, r+1)
		}
		for m := range s.ModulesPerRuntime {
			mod := snapshot.Module{Name: fmt.Sprintf("module_%05d", m), Status: snapshot.StatusOK, Kind: snapshot.ModulePure}
			o.Modules = append(o.Modules, mod)
			if !changed() {
				n.Modules = append(n.Modules, mod)
				continue
			}
			switch rng.IntN(3) {
			case 0:
				mod.Status = snapshot.StatusImportError
				mod.Error = fmt.Sprintf("No module named '_%s'", mod.Name)
				n.Modules = append(n.Modules, mod)
			case 1: // removed
			case 2:
				n.Modules = append(n.Modules, mod)
				mod.Name += "_new"
				n.Modules = append(n.Modules, mod)
			}
		}
		o.Packages = []snapshot.RuntimePackage{{Name: "pip", Version: "23.0.1"}, {Name: "setuptools", Version: "65.5.0"}}
		n.Packages = []snapshot.RuntimePackage{{Name: "pip", Version: "24.0"}, {Name: "setuptools", Version: "65.5.0"}}
		old.Runtimes = append(old.Runtimes, o)
		new.Runtimes = append(new.Runtimes, n)
	}
	for i := range s.Tools {
		t := snapshot.Tool{Name: fmt.Sprintf("tool-%05d", i), Path: fmt.Sprintf("/usr/bin/tool-%05d", i), Version: fmt.Sprintf("1.%d.0", i%50), Status: snapshot.StatusOK}
		old.Tools = append(old.Tools, t)
		if changed() {
			t.Status, t.Error = snapshot.StatusFailed, "error while loading shared libraries: libsynthetic.so.1"
		}
		new.Tools = append(new.Tools, t)
	}
	old.Normalize()
	new.Normalize()
	return old, new
}
