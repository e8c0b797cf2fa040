// Package tools lists the executables on an image's standard PATH and asks
// the common CI tools among them for their versions.
package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// Probe statuses, as snapshot.Tool.Status.
const (
	StatusOK      = snapshot.StatusOK
	StatusFailed  = snapshot.StatusFailed
	StatusTimeout = snapshot.StatusTimeout
)

// DefaultTimeout limits one version probe when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// maxOutput caps what a probe may print; a version fits in far less.
const maxOutput = 64 << 10

// Options control Collect.
type Options struct {
	// Dirs are the PATH directories inside the image, searched in order as
	// a shell would; nil means StandardDirs.
	Dirs []string
	// ExtraDirs are searched after Dirs (e.g. the PATH of the image's
	// config, such as /opt/conda/bin).
	ExtraDirs []string
	// Timeout limits each version probe; DefaultTimeout when zero.
	Timeout time.Duration
	// Concurrency is how many probes run at once; twice the CPUs when zero.
	Concurrency int
}

// StandardDirs returns the PATH that Debian, Ubuntu, Alpine and RHEL give
// root, in search order.
func StandardDirs() []string {
	return []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}
}

// Collect lists every executable in the PATH directories, once per name as
// a shell would find it first, and, when t.Runner is not nil, asks the
// curated common CI tools (Probed) for their versions, concurrently and each
// within opts.Timeout (a probe that times out gets one more try with twice
// the time). A probe that fails or hangs is recorded in its Tool's
// Status and Error, never returned as an error; Collect returns an error
// only when ctx ends. Links are resolved inside the image, never on the host.
func Collect(ctx context.Context, t *source.Tree, opts Options) ([]snapshot.Tool, []string, error) {
	dirs := opts.Dirs
	if dirs == nil {
		dirs = StandardDirs()
	}
	dirs = append(slices.Clip(dirs), opts.ExtraDirs...)
	tools, warnings := list(t, dirs)
	if t.Runner == nil {
		return tools, warnings, nil
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	workers := opts.Concurrency
	if workers <= 0 {
		workers = 2 * runtime.NumCPU()
	}
	probeAll(ctx, t.Runner, tools, workers, timeout, func(tool snapshot.Tool) bool {
		_, ok := probes[tool.Name]
		return ok && !busyboxApplet(t, tool.Path)
	})
	// A slow tool (gcloud, a JVM) can miss its timeout on a machine
	// busy with the rest of the scan; a second chance with twice the
	// time keeps two scans of one image alike. A tool that really hangs
	// costs three timeouts in all, never more.
	probeAll(ctx, t.Runner, tools, workers, 2*timeout, func(tool snapshot.Tool) bool {
		return tool.Status == StatusTimeout
	})
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("probe tool versions: %w", err)
	}
	return tools, warnings, nil
}

// busyboxApplet reports whether p is a link to BusyBox (Alpine's tar, wget,
// unzip …). Its applets do not answer --version, and the version they
// would state is BusyBox's own, so they are listed but not probed.
func busyboxApplet(t *source.Tree, p string) bool {
	real, err := t.Resolve(p)
	return err == nil && path.Base(real) == "busybox"
}

// probeAll probes, workers at a time, the tools that want says should be.
func probeAll(ctx context.Context, r source.Runner, tools []snapshot.Tool, workers int, timeout time.Duration, want func(snapshot.Tool) bool) {
	var order []int
	for i := range tools {
		if want(tools[i]) {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmpBool(probes[tools[b].Name].slow, probes[tools[a].Name].slow)
	})
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for _, i := range order {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			tools[i] = Probe(ctx, r, tools[i].Name, tools[i].Path, timeout)
		})
	}
	wg.Wait()
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// list finds the executables in dirs. A directory that is an alias of an
// earlier one (/bin -> usr/bin on a usr-merged system) adds nothing.
func list(t *source.Tree, dirs []string) ([]snapshot.Tool, []string) {
	var (
		tools    []snapshot.Tool
		warnings []string
		seenDir  = map[string]bool{}
		seenName = map[string]bool{}
	)
	for _, d := range dirs {
		if !path.IsAbs(d) {
			// A relative PATH entry depends on the working directory;
			// no shell in a CI job finds its tools that way on purpose.
			continue
		}
		d = path.Clean(d)
		real, err := realDir(t, d)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				warnings = append(warnings, fmt.Sprintf("tools: %v", err))
			}
			continue
		}
		if seenDir[real] {
			continue
		}
		seenDir[real] = true
		entries, err := t.ReadDir(real)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				warnings = append(warnings, fmt.Sprintf("tools: list %s: %v", d, err))
			}
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if seenName[name] {
				continue
			}
			inImage := path.Join(d, name)
			if !executable(t, inImage, e) {
				continue
			}
			seenName[name] = true
			tools = append(tools, snapshot.Tool{Name: name, Path: inImage})
		}
	}
	slices.SortFunc(tools, func(a, b snapshot.Tool) int { return strings.Compare(a.Name, b.Name) })
	return tools, warnings
}

// realDir returns the in-image directory that d is once links are
// resolved inside the image.
func realDir(t *source.Tree, d string) (string, error) {
	real, err := t.Resolve(d)
	if err != nil {
		return "", fmt.Errorf("resolve PATH dir %s: %w", d, err)
	}
	fi, err := t.Stat(real)
	if err != nil {
		return "", fmt.Errorf("PATH dir %s: %w", d, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("PATH dir %s: %w", d, fs.ErrNotExist)
	}
	return real, nil
}

// executable reports whether the entry is a regular file with an execute
// bit, following a link inside the image.
func executable(t *source.Tree, inImage string, e fs.DirEntry) bool {
	var (
		fi  fs.FileInfo
		err error
	)
	switch {
	case e.Type().IsRegular():
		fi, err = e.Info()
	case e.Type()&fs.ModeSymlink != 0:
		fi, err = t.Stat(inImage)
	default:
		return false
	}
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// probeEnv is the whole environment of a probe: the standard PATH, a
// throw-away HOME, the C locale (so output is the untranslated English the
// patterns expect), and the opt-outs that keep version commands from
// reaching the network or prompting.
func probeEnv() []string {
	return []string{
		"PATH=" + strings.Join(StandardDirs(), ":"),
		"HOME=/tmp",
		"LANG=C",
		"LC_ALL=C",
		"GOTOOLCHAIN=local",
		"CHECKPOINT_DISABLE=1",
		"NO_UPDATE_NOTIFIER=1",
		"COREPACK_ENABLE_NETWORK=0",
		"COREPACK_ENABLE_DOWNLOAD_PROMPT=0",
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		"PIP_NO_INPUT=1",
		"DOTNET_CLI_TELEMETRY_OPTOUT=1",
		"DOTNET_NOLOGO=1",
		"DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1",
		"POWERSHELL_TELEMETRY_OPTOUT=1",
		"POWERSHELL_UPDATECHECK=Off",
		"GH_NO_UPDATE_NOTIFIER=1",
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=1",
		"AZURE_CORE_COLLECT_TELEMETRY=0",
		"COMPOSER_ALLOW_SUPERUSER=1",
		"COMPOSER_NO_INTERACTION=1",
		"RUSTUP_AUTO_INSTALL=0",
	}
}

// grace is how long Probe waits beyond timeout for a runner to report a
// program it killed, before giving up on it.
const grace = 2 * time.Second

// Probe asks the tool named name (one of Probed), at inImage, for its
// version within timeout. It always returns: a program that outlives its
// timeout (or a runner that fails to stop it) gives StatusTimeout.
func Probe(ctx context.Context, r source.Runner, name, inImage string, timeout time.Duration) snapshot.Tool {
	tool := snapshot.Tool{Name: name, Path: inImage}
	pr, ok := probes[name]
	if !ok {
		tool.Status, tool.Error = StatusFailed, fmt.Sprintf("no version probe for %s", name)
		return tool
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	type outcome struct {
		res            sandbox.Result
		stdout, stderr string
		err            error
	}
	done := make(chan outcome, 1)
	runCtx, cancel := context.WithTimeout(ctx, timeout+grace)
	defer cancel()
	go func() {
		// The buffers belong to this goroutine: if it is abandoned
		// below, nobody else reads them.
		var stdout, stderr bytes.Buffer
		res, err := r.Run(runCtx, sandbox.Command{
			Path: inImage, Args: pr.args, Env: probeEnv(),
			Stdout: &stdout, Stderr: &stderr,
			Timeout: timeout, MaxOutput: maxOutput,
		})
		done <- outcome{res, stdout.String(), stderr.String(), err}
	}()
	var o outcome
	select {
	case o = <-done:
	case <-runCtx.Done():
		// Give the runner a moment to report the kill it should have
		// made, then abandon it rather than hang the scan.
		select {
		case o = <-done:
		case <-time.After(grace):
			tool.Status, tool.Error = StatusTimeout, fmt.Sprintf("no answer within %s", timeout)
			return tool
		}
	}
	switch {
	case o.err != nil:
		tool.Status, tool.Error = StatusFailed, shorten(o.err.Error())
	case o.res.TimedOut || (ctx.Err() == nil && runCtx.Err() != nil):
		tool.Status, tool.Error = StatusTimeout, fmt.Sprintf("no answer within %s", timeout)
	case o.res.Signal != "":
		tool.Status, tool.Error = StatusFailed, joinNonEmpty("killed by "+o.res.Signal, tail(o.stderr))
	case o.res.ExitCode != 0:
		evidence := tail(o.stderr)
		if evidence == "" {
			evidence = tail(o.stdout)
		}
		tool.Status, tool.Error = StatusFailed, joinNonEmpty(fmt.Sprintf("exit status %d", o.res.ExitCode), evidence)
	default:
		if v, ok := pr.extract(o.stdout, o.stderr); ok {
			tool.Status, tool.Version = StatusOK, v
			return tool
		}
		out := tail(o.stdout)
		if out == "" {
			out = tail(o.stderr)
		}
		tool.Status, tool.Error = StatusFailed, joinNonEmpty("no version in output", out)
	}
	return tool
}

func joinNonEmpty(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// tail returns the last few lines of a program's output, short enough to
// read in a table and valid UTF-8 for the JSON snapshot.
func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(ansiEscape.ReplaceAllString(s, "")), "\n")
	var kept []string
	for i := len(lines) - 1; i >= 0 && len(kept) < 3; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			kept = append(kept, l)
		}
	}
	slices.Reverse(kept)
	return shorten(strings.Join(kept, " | "))
}

func shorten(s string) string {
	const limit = 300
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= limit {
		return s
	}
	cut := len(s) - limit
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return "…" + s[cut:]
}
