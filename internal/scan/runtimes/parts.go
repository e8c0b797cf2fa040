package runtimes

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// Options tune Collect.
type Options struct {
	// PartTimeout limits one part's check with execution (default 10s).
	PartTimeout time.Duration
	// Concurrency is how many installations have their parts checked at
	// once (default runtime.NumCPU()).
	Concurrency int
	// Kinds, when not empty, limits Collect to these runtime kinds
	// (KindSystem included): for a caller that wants one kind's figures,
	// such as BenchmarkParts.
	Kinds []string
}

// wants says whether Collect reports runtimes of kind.
func (o Options) wants(kind string) bool {
	return len(o.Kinds) == 0 || slices.Contains(o.Kinds, kind) ||
		kind == "dotnet" && (slices.Contains(o.Kinds, KindDotnetSDK) || slices.Contains(o.Kinds, KindDotnetRuntime))
}

func (o Options) withDefaults() Options {
	if o.PartTimeout <= 0 {
		o.PartTimeout = 10 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.NumCPU()
	}
	return o
}

// partsChecker is one runtime kind's check of its standard parts: static
// returns the parts with their status from the files alone, and sweep (nil
// when the kind cannot be run here) puts the verdicts of the runtime's own
// process over them.
type partsChecker func(ctx context.Context, t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, opts Options) (mods map[string]*snapshot.Module, warnings []string)

var partsCheckers = map[string]partsChecker{
	KindJava:   checkJava,
	KindNode:   checkNode,
	KindGo:     checkGo,
	KindRuby:   checkRuby,
	KindPHP:    checkPHP,
	KindPerl:   checkPerl,
	KindSystem: checkSystem,

	KindDotnetRuntime: checkDotnet,
}

func checkJava(ctx context.Context, t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, opts Options) (map[string]*snapshot.Module, []string) {
	p := javaStatic(t, res, r)
	warnings := p.warnings
	if t.Runner != nil && r.Executable != "" {
		out, w := javaSweep(ctx, t, r, p, opts)
		if w != "" {
			warnings = append(warnings, w)
		}
		javaMerge(p, out)
	}
	return p.mods, warnings
}

// checkParts gives every runtime whose kind has a parts checker its
// modules, concurrently, and returns the warnings in a stable order.
func checkParts(ctx context.Context, t *source.Tree, rs []snapshot.Runtime, opts Options) []string {
	res, err := ldso.NewResolver(ctx, t.LibraryRoot())
	if err != nil {
		return []string{fmt.Sprintf("runtimes: read shared-library configuration: %v; standard parts not checked", err)}
	}
	var (
		mu       sync.Mutex
		warnings []string
		wg       sync.WaitGroup
		sem      = make(chan struct{}, opts.Concurrency)
	)
	for i := range rs {
		check := partsCheckers[rs[i].Kind]
		if check == nil {
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			mods, w := check(ctx, t, res, &rs[i], opts)
			rs[i].Modules = sortedModules(mods)
			mu.Lock()
			warnings = append(warnings, w...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(warnings)
	return warnings
}

func sortedModules(mods map[string]*snapshot.Module) []snapshot.Module {
	out := make([]snapshot.Module, 0, len(mods))
	for _, m := range mods {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b snapshot.Module) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
