package runtimes

import (
	"context"
	_ "embed"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

//go:embed probes/node.js
var nodeProbe string

// Node.js part names that are not built-in modules (those are lower-case
// words and paths such as fs/promises; these cannot clash with one).
const (
	nodeInterpreter = "node"
	nodeIntl        = "intl"
)

// nodeTools are the programs a Node.js distribution ships beside node, and
// the scripts they run (a tool cache's lib/node_modules, Debian's
// /usr/share/nodejs).
var nodeTools = map[string][]string{
	"npm":      {"lib/node_modules/npm/bin/npm-cli.js", "share/nodejs/npm/bin/npm-cli.js"},
	"npx":      {"lib/node_modules/npm/bin/npx-cli.js", "share/nodejs/npm/bin/npx-cli.js"},
	"corepack": {"lib/node_modules/corepack/dist/corepack.js", "share/nodejs/corepack/dist/corepack.js"},
}

// checkNode gives a Node.js installation its parts: the built-in modules of
// its major (generated lists; the running node's own builtinModules with
// execution), each require'd; the interpreter and the libraries it loads
// (libnode, OpenSSL, ICU) resolved inside the image; full ICU; npm, npx and
// corepack where the distribution ships them, run.
func checkNode(ctx context.Context, t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, opts Options) (map[string]*snapshot.Module, []string) {
	var warnings []string
	mods := map[string]*snapshot.Module{}
	major := strings.SplitN(r.Version, ".", 2)[0]
	builtins, known := ExpectedParts("node", major)
	if !known {
		warnings = append(warnings, fmt.Sprintf("node at %s: no built-in module list for Node.js %s; only what the running node reports is checked", r.Path, major))
	}
	for _, name := range builtins {
		mods[name] = &snapshot.Module{Name: name, Kind: PartModule, Status: snapshot.StatusOK}
	}
	interp := &snapshot.Module{Name: nodeInterpreter, Kind: PartTool, Status: snapshot.StatusOK}
	mods[nodeInterpreter] = interp
	if miss := missingLibraries(t, res, r.Executable, path.Join(r.Path, "lib")); len(miss) > 0 {
		// node is one binary (or libnode): a library it cannot load
		// stops every module at once, so it is one verdict.
		interp.Status, interp.Error, interp.MissingLibraries = snapshot.StatusBroken, ldso.NotFoundError(miss[0]), miss
	}
	mods[nodeIntl] = &snapshot.Module{Name: nodeIntl, Kind: PartCapability, Status: snapshot.StatusOK}
	var tools []string
	for _, name := range sortedKeys(nodeTools) {
		for _, script := range nodeTools[name] {
			if _, err := stat(t, path.Join(r.Path, script)); err == nil {
				tools = append(tools, name)
				mods[name] = &snapshot.Module{Name: name, Kind: PartTool, Status: snapshot.StatusOK}
				break
			}
		}
	}
	if t.Runner == nil || r.Executable == "" {
		return mods, warnings
	}
	var parts []string
	for _, name := range builtins {
		parts = append(parts, "module:"+name)
	}
	parts = append(parts, nodeIntl)
	for _, name := range tools {
		parts = append(parts, "tool:"+name)
	}
	out, w := runPartsSweep(ctx, t.Runner, sweepSpec{
		what:    fmt.Sprintf("node at %s", r.Path),
		parts:   parts,
		timeout: opts.PartTimeout,
		command: func(parts []string) sandbox.Command {
			args := append([]string{"-e", nodeProbe, strconv.FormatInt(opts.PartTimeout.Milliseconds(), 10)}, parts...)
			return sandbox.Command{
				Path: r.Executable,
				Args: args,
				Env:  []string{"PATH=" + path.Dir(r.Executable) + ":/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "NODE_OPTIONS=", "NODE_NO_WARNINGS=1"},
			}
		},
	})
	if out.hello == nil {
		// node did not start: the loader's or node's own words are the
		// evidence, on the interpreter, the one part at fault.
		if interp.Status == snapshot.StatusOK {
			interp.Status = snapshot.StatusImportError
		}
		interp.Error = out.startErr
		return mods, warnings
	}
	if w != "" {
		warnings = append(warnings, w)
	}
	interp.Status, interp.Error, interp.MissingLibraries = snapshot.StatusOK, "", nil
	for _, name := range out.hello.Modules {
		if _, ok := mods[name]; !ok {
			// Newer than the generated list: the running node's own
			// list is the truth; it has no verdict yet.
			mods[name] = &snapshot.Module{Name: name, Kind: PartModule, Status: snapshot.StatusOK}
		}
	}
	for part, res := range out.results {
		name := strings.TrimPrefix(strings.TrimPrefix(part, "module:"), "tool:")
		m := mods[name]
		if m == nil || res.Status == snapshot.StatusOK {
			continue
		}
		m.Status, m.Error = res.Status, res.Err
		if m.Kind == PartModule && !contains(out.hello.Modules, name) {
			m.Status = snapshot.StatusMissing
		}
	}
	return mods, warnings
}
