package runtimes

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/version"
)

// goCgo is the part that says whether cgo works: CGO_ENABLED's effective
// value and the C compiler it would use.
const goCgo = "cgo"

// checkGo gives a GOROOT its parts: the standard packages of its version
// (the generated list; each a directory of .go files under GOROOT/src, and
// with execution `go list`'s verdict), the GOROOT/pkg/tool programs, and
// cgo (a C compiler on PATH inside the image, and with execution `go env`'s
// CGO_ENABLED and CC).
func checkGo(ctx context.Context, t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, opts Options) (map[string]*snapshot.Module, []string) {
	var warnings []string
	mods := map[string]*snapshot.Module{}
	xy := version.MajorMinor(r.Version)
	want, known := ExpectedParts("go", xy)
	if !known {
		warnings = append(warnings, fmt.Sprintf("go at %s: no standard package list for Go %s (scripts/gen-runtime-lists); its packages and tools are not checked, only cgo", r.Path, xy))
	}
	tooldir := path.Join(r.Path, "pkg", "tool", "linux_"+goArch(t))
	var pkgs []string
	for _, name := range want {
		if tool, ok := strings.CutPrefix(name, "cmd/"); ok {
			m := &snapshot.Module{Name: name, Kind: PartTool, Status: snapshot.StatusOK}
			exe := path.Join(tooldir, tool)
			if !isExecutable(t, exe) {
				m.Status, m.Error = snapshot.StatusMissing, fmt.Sprintf("go: no such tool %q (%s is missing)", tool, exe)
			}
			mods[name] = m
			continue
		}
		pkgs = append(pkgs, name)
		m := &snapshot.Module{Name: name, Kind: PartModule, Status: snapshot.StatusOK}
		dir := path.Join(r.Path, "src", name)
		if !hasGoFiles(t, dir) {
			// go list's own words for a standard package that is gone.
			m.Status, m.Error = snapshot.StatusMissing, fmt.Sprintf("package %s is not in std (%s)", name, dir)
		}
		mods[name] = m
	}
	cgo := &snapshot.Module{Name: goCgo, Kind: PartCapability, Status: snapshot.StatusOK}
	mods[goCgo] = cgo
	if cc := findCompiler(t); cc == "" {
		cgo.Status, cgo.Error = snapshot.StatusMissing, `cgo: C compiler "gcc" not found: exec: "gcc": executable file not found in $PATH`
	}
	if t.Runner == nil || r.Executable == "" {
		return mods, warnings
	}
	if w := goList(ctx, t, r, pkgs, mods); w != "" {
		warnings = append(warnings, w)
	}
	if w := goEnvCgo(ctx, t, r, cgo); w != "" {
		warnings = append(warnings, w)
	}
	return mods, warnings
}

// goArch is the GOARCH of the image's tools: this machine's unless the
// image says otherwise (Tree.Architecture).
func goArch(t *source.Tree) string {
	if t.Architecture != "" {
		return t.Architecture
	}
	return "amd64"
}

func hasGoFiles(t *source.Tree, dir string) bool {
	host, err := t.HostPath(dir)
	if err != nil {
		return false
	}
	entries, err := os.ReadDir(host)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			return true
		}
	}
	return false
}

// findCompiler is the C compiler cgo would use by default, found on the
// standard PATH inside the image; a tool folder's Go runs on this machine
// and uses this machine's.
func findCompiler(t *source.Tree) string {
	host := !t.RootFS && t.Dir != "/"
	for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		for _, cc := range []string{"gcc", "clang", "cc"} {
			p := path.Join(dir, cc)
			if host {
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
					return p
				}
				continue
			}
			if isExecutableFollow(t, p) {
				return p
			}
		}
	}
	return ""
}

// isExecutableFollow is isExecutable with links followed inside the image
// (/usr/bin/cc → /etc/alternatives/cc → /usr/bin/gcc).
func isExecutableFollow(t *source.Tree, p string) bool {
	host, err := t.HostPath(p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(host)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// goEnv leaves GOROOT unset: go finds its own from where it lies, which is
// right inside a chroot and in a tool folder alike.
func goEnv(r *snapshot.Runtime) []string {
	return []string{"PATH=" + path.Dir(r.Executable) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "LANG=C",
		"GOTOOLCHAIN=local", "GOFLAGS=", "GO111MODULE=", "GOCACHE=/tmp/imagegate-gocache", "GOPATH=/tmp/imagegate-gopath"}
}

// goList asks the toolchain about every standard package at once: its
// answer (package fmt is not in std) is the runtime's own word for each.
func goList(ctx context.Context, t *source.Tree, r *snapshot.Runtime, pkgs []string, mods map[string]*snapshot.Module) string {
	if len(pkgs) == 0 {
		return ""
	}
	var stdout, stderr bytes.Buffer
	args := append([]string{"list", "-e", "-f", "{{.ImportPath}}\t{{with .Error}}{{.Err}}{{end}}"}, pkgs...)
	res, err := t.Runner.Run(ctx, sandbox.Command{Path: r.Executable, Args: args, Env: goEnv(r), Dir: "/",
		Stdout: &stdout, Stderr: &stderr, Timeout: 2 * runTimeout, MaxOutput: 4 << 20})
	switch {
	case err != nil:
		return fmt.Sprintf("go at %s: go list not run, packages checked from files only: %v", r.Path, err)
	case res.TimedOut || res.Signal != "" || (res.ExitCode != 0 && stdout.Len() == 0):
		return fmt.Sprintf("go at %s: go list failed (%s), packages checked from files only", r.Path, describeEnd(res, lastLine(stderr.String())))
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		name, msg, ok := strings.Cut(line, "\t")
		m := mods[name]
		if !ok || m == nil {
			continue
		}
		switch {
		case msg == "" && m.Status != snapshot.StatusMissing:
			m.Status, m.Error = snapshot.StatusOK, ""
		case msg == "":
		case strings.Contains(msg, "is not in std"):
			m.Status, m.Error = snapshot.StatusMissing, msg
		default:
			m.Status, m.Error = snapshot.StatusImportError, msg
		}
	}
	return ""
}

// goEnvCgo reads the effective CGO_ENABLED and CC, and whether that CC
// runs.
func goEnvCgo(ctx context.Context, t *source.Tree, r *snapshot.Runtime, cgo *snapshot.Module) string {
	var stdout, stderr bytes.Buffer
	res, err := t.Runner.Run(ctx, sandbox.Command{Path: r.Executable, Args: []string{"env", "CGO_ENABLED", "CC"}, Env: goEnv(r), Dir: "/",
		Stdout: &stdout, Stderr: &stderr, Timeout: runTimeout, MaxOutput: 64 << 10})
	if err != nil || res.ExitCode != 0 || res.TimedOut {
		return fmt.Sprintf("go at %s: go env not run, cgo checked from files only: %s", r.Path, describeEnd(res, lastLine(stderr.String())))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 2 {
		return ""
	}
	enabled, cc := strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
	switch {
	case enabled == "1":
		cgo.Status, cgo.Error = snapshot.StatusOK, ""
	case cgo.Status == snapshot.StatusMissing:
		// Go turns cgo off by itself when it finds no C compiler; the
		// compiler's absence is the cause.
		cgo.Error = fmt.Sprintf(`cgo: C compiler %q not found: exec: %q: executable file not found in $PATH (go env CGO_ENABLED is 0)`, firstWord(cc), firstWord(cc))
	default:
		cgo.Status, cgo.Error = snapshot.StatusImportError, fmt.Sprintf("go env CGO_ENABLED is %q with CC %q", enabled, cc)
	}
	return ""
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return "gcc"
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.ToValidUTF8(strings.TrimSpace(lines[len(lines)-1]), "\uFFFD")
}
