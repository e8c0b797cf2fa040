// Package scan turns an image into a snapshot: it walks the image once to
// find installations, then runs the collectors (OS packages, runtimes, the
// Python standard library, tools) concurrently.
package scan

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/ospkg"
	"github.com/imagegate/imagegate/internal/scan/python"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/scan/tools"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// Exec modes: auto picks the strongest the machine permits and records it
// in the snapshot as one of the others.
const (
	ExecAuto   = "auto"
	ExecNone   = snapshot.ExecNone
	ExecLocal  = snapshot.ExecLocal
	ExecChroot = snapshot.ExecChroot
)

// ErrExecMode is returned for an --exec value that is not one of the modes.
var ErrExecMode = errors.New("unknown exec mode")

// Options control a scan.
type Options struct {
	// Exec is how the image's programs may be run: auto, none, local, chroot.
	Exec string
	// ModuleTimeout limits one Python module import (default 10s).
	ModuleTimeout time.Duration
	// ToolTimeout limits one tool version probe (default 5s).
	ToolTimeout time.Duration
	// ScannerVersion is written into the snapshot.
	ScannerVersion string
	Logger         *slog.Logger
	// Now stamps ScannedAt; time.Now when nil.
	Now func() time.Time
	// HostPATH is the PATH of the process that runs the scan, searched for
	// tools when the SOURCE is host (a hosted image puts /usr/local/go/bin
	// and ~/.cargo/bin there); ignored for every other SOURCE.
	HostPATH string
}

// Scan inventories the image whose files tree holds. It sets tree.Runner to
// the way it chose to run the image's programs (opts.Exec; nil for none), so
// that spec tests run against the same image the same way.
func Scan(ctx context.Context, tree *source.Tree, opts Options) (*snapshot.Snapshot, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	snap := &snapshot.Snapshot{
		Schema:       snapshot.SchemaV1,
		Source:       tree.Spec,
		ScannedAt:    now().UTC().Truncate(time.Second),
		Scanner:      snapshot.Scanner{Name: "imagegate", Version: opts.ScannerVersion},
		Architecture: tree.Architecture,
		Image:        tree.Image,
		Skipped:      tree.Skipped,
	}
	if snap.Architecture == "" && tree.Spec == "host" {
		snap.Architecture = runtime.GOARCH
	}
	runner, warning, err := chooseRunner(tree, opts.Exec)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		snap.Warnings = append(snap.Warnings, warning)
		log.Warn(warning)
	}
	snap.Exec = ExecNone
	tree.Runner = runner
	if runner != nil {
		snap.Exec = runner.Mode()
	}

	py := python.NewFinder(python.Options{ModuleTimeout: opts.ModuleTimeout})
	rt := runtimes.NewFinder(runtimes.Options{PartTimeout: opts.ModuleTimeout})
	started := time.Now()
	if err := walk(ctx, tree, []Finder{py, rt}); err != nil {
		return nil, fmt.Errorf("walk %s: %w", tree.Spec, err)
	}
	log.Debug("walked image", "source", tree.Spec, "elapsed", time.Since(started))

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		errs     []error
		owners   *ospkg.Owners
		warnings []string
	)
	collect := func(name string, f func() ([]string, error)) {
		wg.Go(func() {
			begin := time.Now()
			w, err := f()
			mu.Lock()
			defer mu.Unlock()
			warnings = append(warnings, w...)
			if err != nil {
				errs = append(errs, fmt.Errorf("scan %s: %w", name, err))
			}
			log.Debug("collected", "collector", name, "elapsed", time.Since(begin))
		})
	}
	collect("os-release", func() ([]string, error) {
		os, err := ospkg.ReadOS(ctx, tree)
		snap.OS = os
		return nil, err
	})
	collect("os packages", func() ([]string, error) {
		res, w, err := ospkg.Packages(ctx, tree)
		snap.Packages, owners = res.Packages, res.Owners
		return w, err
	})
	var pyRuntimes, otherRuntimes []snapshot.Runtime
	collect("python", func() (w []string, err error) {
		pyRuntimes, w, err = py.Collect(ctx, tree)
		return w, err
	})
	collect("runtimes", func() (w []string, err error) {
		otherRuntimes, w, err = rt.Collect(ctx, tree)
		return w, err
	})
	toolDirs := toolPath(tree, opts.HostPATH)
	snap.ToolPath = toolDirs
	collect("tools", func() (w []string, err error) {
		snap.Tools, w, err = tools.Collect(ctx, tree, tools.Options{Dirs: toolDirs, Timeout: opts.ToolTimeout})
		return w, err
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	snap.Runtimes = append(pyRuntimes, otherRuntimes...)
	snap.Warnings = append(snap.Warnings, warnings...)
	attributeOwners(tree, snap, owners)
	snap.Normalize()
	return snap, nil
}

// attributeOwners marks what the OS package manager ships: a runtime whose
// executable a package owns is the distribution's own, which the gate treats
// differently (Debian splits its Python's standard library into optional
// packages on purpose).
func attributeOwners(t *source.Tree, snap *snapshot.Snapshot, owners *ospkg.Owners) {
	if owners == nil {
		return
	}
	lookup := func(p string) (string, bool) {
		if pkg, ok := owners.Lookup(p); ok {
			return pkg, true
		}
		// /usr/bin/python3 is a link to python3.11: the package that owns
		// the link's target owns the interpreter.
		if resolved, err := t.Resolve(p); err == nil && resolved != p {
			return owners.Lookup(resolved)
		}
		return "", false
	}
	for i := range snap.Runtimes {
		r := &snap.Runtimes[i]
		if r.Executable == "" {
			continue
		}
		if pkg, ok := lookup(r.Executable); ok {
			r.OwnerPackage, r.Origin = pkg, snapshot.OriginOSPackage
		}
	}
	for i := range snap.Tools {
		if pkg, ok := lookup(snap.Tools[i].Path); ok {
			snap.Tools[i].OwnerPackage = pkg
		}
	}
}

// toolPath is the PATH tools are listed from, in search order, each
// directory once: for host, the invoking process's PATH first (what the
// shell that ran the scan finds); then the PATH the image's
// /etc/environment defines (a hosted image's PATH for every job); then the
// standard directories; then the image config's PATH.
func toolPath(tree *source.Tree, hostPATH string) []string {
	var dirs []string
	if tree.Spec == source.SchemeHost {
		dirs = append(dirs, filepath.SplitList(hostPATH)...)
	}
	if tree.RootFS {
		dirs = append(dirs, environmentPath(tree)...)
	}
	dirs = append(dirs, tools.StandardDirs()...)
	dirs = append(dirs, imagePath(tree.Image)...)
	seen := map[string]bool{}
	out := dirs[:0]
	for _, d := range dirs {
		if !path.IsAbs(d) {
			continue // a relative entry depends on the working directory
		}
		d = path.Clean(d)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// environmentPath reads PATH from the image's /etc/environment (pam_env's
// KEY=VALUE lines, the value optionally quoted); nil when there is none.
func environmentPath(tree *source.Tree) []string {
	f, err := tree.Open("/etc/environment")
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	var value string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "export ")
		if v, ok := strings.CutPrefix(line, "PATH="); ok {
			value = strings.Trim(v, `"'`)
		}
	}
	if value == "" {
		return nil
	}
	return filepath.SplitList(value)
}

// imagePath returns the directories of the image config's PATH, so that
// tools an image puts on its own PATH (/opt/conda/bin) are listed too.
func imagePath(img *snapshot.Image) []string {
	if img == nil {
		return nil
	}
	for _, kv := range img.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return filepath.SplitList(v)
		}
	}
	return nil
}

// chooseRunner picks how the image's programs run. auto means: the host and
// tool folders run here; root filesystems run chrooted where that is
// permitted, and otherwise are checked from their files alone, with a
// warning that says so.
func chooseRunner(tree *source.Tree, mode string) (source.Runner, string, error) {
	switch mode {
	case ExecNone:
		return nil, "", nil
	case ExecLocal:
		return sandbox.NewLocal(tree.Dir), "", nil
	case ExecChroot:
		if err := sandbox.Permitted(); err != nil {
			return nil, "", err
		}
		r, err := sandbox.NewChroot(tree.Dir, sandbox.ChrootOptions{})
		return r, "", err
	case ExecAuto, "":
		if tree.Dir == "/" || !tree.RootFS {
			return sandbox.NewLocal(tree.Dir), "", nil
		}
		if err := sandbox.Permitted(); err != nil {
			return nil, fmt.Sprintf("programs in the image were not run (%v); modules were checked from their files only", err), nil
		}
		r, err := sandbox.NewChroot(tree.Dir, sandbox.ChrootOptions{})
		if err != nil {
			return nil, fmt.Sprintf("programs in the image were not run (%v); modules were checked from their files only", err), nil
		}
		return r, "", nil
	}
	return nil, "", fmt.Errorf("%w %q: use auto, none, local or chroot", ErrExecMode, mode)
}
