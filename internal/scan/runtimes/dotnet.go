package runtimes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/version"
)

// .NET part names: the shared frameworks by their own names
// (Microsoft.NETCore.App, Microsoft.AspNetCore.App), and these.
const (
	dotnetHostFXR = "hostfxr"
	dotnetICU     = "icu"
)

// dotnetOptionalNatives are natives of the runtime that CoreCLR loads only
// when asked and does without otherwise: the LTTng trace provider
// (liblttng-ust is optional, .NET's Linux prerequisites say).
var dotnetOptionalNatives = map[string]bool{"libcoreclrtraceptprovider.so": true}

// ParseDepsJSON returns the file names a shared framework's
// <Name>.deps.json lists as its runtime assemblies and native libraries:
// what the host loads from the framework directory.
func ParseDepsJSON(data []byte) (assemblies, natives []string, err error) {
	var d struct {
		Targets map[string]map[string]struct {
			Runtime map[string]json.RawMessage `json:"runtime"`
			Native  map[string]json.RawMessage `json:"native"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, nil, fmt.Errorf("deps.json: %w", err)
	}
	seen := map[string]bool{}
	for _, libs := range d.Targets {
		for _, lib := range libs {
			for f := range lib.Runtime {
				if b := path.Base(f); !seen[b] {
					seen[b] = true
					assemblies = append(assemblies, b)
				}
			}
			for f := range lib.Native {
				if b := path.Base(f); !seen[b] {
					seen[b] = true
					natives = append(natives, b)
				}
			}
		}
	}
	slices.Sort(assemblies)
	slices.Sort(natives)
	return assemblies, natives, nil
}

// dotnetInvariant says whether the image runs .NET without ICU: the
// configuration switch as an environment variable of the image (its config
// or /etc/environment), which every app's process inherits.
func dotnetInvariant(t *source.Tree) bool {
	var env []string
	if t.Image != nil {
		env = append(env, t.Image.Env...)
	}
	if data, err := readFile(t, "/etc/environment"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			env = append(env, strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		}
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT="); ok {
			v = strings.ToLower(strings.Trim(v, `"'`))
			return v == "1" || v == "true"
		}
	}
	return false
}

// icuDirs are where the dynamic loader finds ICU, which .NET dlopens by
// soname (libicuuc.so.NN, newest first) rather than linking it.
func icuDirs(res *ldso.Resolver) []string {
	dirs := append(res.ConfDirs(), "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib")
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// checkDotnet gives a .NET runtime (one shared/Microsoft.NETCore.App
// version of a .NET root) its parts, from the files only (no .NET is
// installable on this machine to run it): each shared framework of that
// version — Microsoft.NETCore.App and those built on it, such as
// Microsoft.AspNetCore.App — with every assembly and native library its
// deps.json lists present and the natives resolved inside the image;
// hostfxr; and ICU unless the image sets invariant globalization.
func checkDotnet(_ context.Context, t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, _ Options) (map[string]*snapshot.Module, []string) {
	var warnings []string
	mods := map[string]*snapshot.Module{}
	shared := path.Join(r.Path, "shared")
	frameworks, _ := t.ReadDir(shared)
	for _, fw := range frameworks {
		dir := path.Join(shared, fw.Name(), r.Version)
		if fw.Name() != "Microsoft.NETCore.App" {
			// A framework on top of the runtime ships in versions of
			// its own major.minor: ASP.NET Core 8.0.x runs on 8.0.x.
			dir = ""
			versions, _ := t.ReadDir(path.Join(shared, fw.Name()))
			for _, v := range versions {
				if version.MajorMinor(v.Name()) == version.MajorMinor(r.Version) {
					dir = path.Join(shared, fw.Name(), v.Name())
				}
			}
		}
		if dir == "" || !isDir(t, dir) {
			continue
		}
		m := &snapshot.Module{Name: fw.Name(), Kind: PartModule, Status: snapshot.StatusOK}
		mods[fw.Name()] = m
		deps := path.Join(dir, fw.Name()+".deps.json")
		data, err := readFile(t, deps)
		if err != nil {
			m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("%s: %v: the host cannot resolve the framework's assemblies", deps, err)
			continue
		}
		assemblies, natives, err := ParseDepsJSON(data)
		if err != nil {
			m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("%s: %v", deps, err)
			continue
		}
		var absent []string
		for _, f := range append(assemblies, natives...) {
			if !fileExists(t, path.Join(dir, f)) {
				absent = append(absent, f)
			}
		}
		if len(absent) > 0 {
			slices.Sort(absent)
			m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("%s: %s listed in %s.deps.json but not in %s", strings.Join(absent, ", "), plural(len(absent), "file", "files"), fw.Name(), dir)
			continue
		}
		for _, f := range natives {
			if dotnetOptionalNatives[f] || !strings.HasSuffix(f, ".so") {
				continue
			}
			if miss := missingLibraries(t, res, path.Join(dir, f)); len(miss) > 0 {
				m.Status, m.Error, m.MissingLibraries = snapshot.StatusBroken, fmt.Sprintf("%s: %s", path.Join(dir, f), ldso.NotFoundError(miss[0])), miss
				break
			}
		}
	}
	if _, ok := mods["Microsoft.NETCore.App"]; !ok {
		warnings = append(warnings, fmt.Sprintf("dotnet-runtime %s at %s: no shared/Microsoft.NETCore.App/%s", r.Version, r.Path, r.Version))
	}
	fxr := &snapshot.Module{Name: dotnetHostFXR, Kind: PartTool, Status: snapshot.StatusOK}
	mods[dotnetHostFXR] = fxr
	if m, _ := t.Glob(path.Join(r.Path, "host/fxr/*/libhostfxr.so")); len(m) == 0 {
		// The host's own words when it finds no resolver.
		fxr.Status, fxr.Error = snapshot.StatusMissing, fmt.Sprintf("A fatal error occurred, the folder [%s] does not exist", path.Join(r.Path, "host/fxr"))
	} else if miss := missingLibraries(t, res, m[len(m)-1]); len(miss) > 0 {
		fxr.Status, fxr.Error, fxr.MissingLibraries = snapshot.StatusBroken, ldso.NotFoundError(miss[0]), miss
	} else if miss := missingLibraries(t, res, r.Executable); len(miss) > 0 {
		fxr.Status, fxr.Error, fxr.MissingLibraries = snapshot.StatusBroken, r.Executable+": "+ldso.NotFoundError(miss[0]), miss
	}
	if dotnetInvariant(t) {
		return mods, warnings
	}
	icu := &snapshot.Module{Name: dotnetICU, Kind: PartCapability, Status: snapshot.StatusOK}
	mods[dotnetICU] = icu
	var uc, i18n bool
	for _, d := range icuDirs(res) {
		for _, pattern := range []string{"libicuuc.so.*", "libicui18n.so.*"} {
			var m []string
			if t.RootFS || t.Dir == "/" {
				m, _ = t.Glob(path.Join(d, pattern))
			} else {
				m = hostGlob(path.Join(d, pattern)) // a tool folder loads this machine's libraries
			}
			if len(m) > 0 {
				uc = uc || strings.HasPrefix(pattern, "libicuuc")
				i18n = i18n || strings.HasPrefix(pattern, "libicui18n")
			}
		}
	}
	if !uc || !i18n {
		icu.Status = snapshot.StatusMissing
		// .NET's own words at the first use of globalization.
		icu.Error = "Couldn't find a valid ICU package installed on the system. Set the configuration flag System.Globalization.Invariant to true if you want to run with no globalization support."
	}
	return mods, warnings
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func hostGlob(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}
