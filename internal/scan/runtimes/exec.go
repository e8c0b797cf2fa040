package runtimes

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/source"
)

// versionCommand is how a runtime states its version when run.
type versionCommand struct {
	args    []string
	pattern *regexp.Regexp
}

var versionCommands = map[string]versionCommand{
	KindNode: {[]string{"--version"}, regexp.MustCompile(`(?m)^v(\d+\.\d+\.\d+\S*)`)},
	KindGo:   {[]string{"version"}, regexp.MustCompile(`go version go(\S+)`)},
	// java prints its version on stderr; JAVA_TOOL_OPTIONS banners may
	// come first.
	KindJava: {[]string{"-version"}, regexp.MustCompile(`version "([^"]+)"`)},
	KindRuby: {[]string{"--version"}, regexp.MustCompile(`(?m)^ruby (\d+\.\d+\.\d+)`)},
	// -n: no ini files, so that a broken extension's startup warning
	// cannot hide the version (the parts check reports it).
	KindPHP:  {[]string{"-n", "-v"}, regexp.MustCompile(`(?m)^PHP (\d+\.\d+\.\d+\S*) `)},
	KindPerl: {[]string{"-e", `printf "perl %vd\n", $^V`}, regexp.MustCompile(`(?m)^perl (\d+\.\d+\.\d+)`)},
}

// ParseVersionOutput returns the version in what a runtime of kind printed
// when asked for it (node --version, go version, java -version, ruby
// --version).
func ParseVersionOutput(kind, output string) (string, error) {
	vc, ok := versionCommands[kind]
	if !ok {
		return "", fmt.Errorf("%s: no version command", kind)
	}
	m := vc.pattern.FindStringSubmatch(output)
	if m == nil || m[1] == "" {
		return "", fmt.Errorf("%s: %w in %q", kind, ErrNoVersion, excerpt(output))
	}
	return m[1], nil
}

// runTimeout limits one version command. A JVM on a loaded machine needs a
// second or two; nothing needs ten.
const runTimeout = 10 * time.Second

// runVersion runs exe (inside the image) and returns the version it states.
func runVersion(ctx context.Context, r source.Runner, kind, exe string) (string, error) {
	vc := versionCommands[kind]
	var stdout, stderr bytes.Buffer
	res, err := r.Run(ctx, sandbox.Command{
		Path: exe,
		Args: vc.args,
		// GOTOOLCHAIN=local: a go.mod-less `go version` never switches
		// toolchains, but a GOTOOLCHAIN from nowhere must not download.
		Env:       []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "LANG=C", "LC_ALL=C", "GOTOOLCHAIN=local"},
		Stdout:    &stdout,
		Stderr:    &stderr,
		Timeout:   runTimeout,
		MaxOutput: 64 << 10,
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("run %s: %w", exe, err)
	case res.TimedOut:
		return "", fmt.Errorf("%s %s: no answer within %s", exe, strings.Join(vc.args, " "), runTimeout)
	case res.Signal != "":
		return "", fmt.Errorf("%s %s: killed by %s", exe, strings.Join(vc.args, " "), res.Signal)
	case res.ExitCode != 0:
		return "", fmt.Errorf("%s %s: exit status %d: %s", exe, strings.Join(vc.args, " "), res.ExitCode, excerpt(stderr.String()))
	}
	return ParseVersionOutput(kind, stdout.String()+"\n"+stderr.String())
}

// excerpt is the start of what a runtime printed, for an error message:
// its first line, at most 200 bytes, valid UTF-8 (it may end up in a
// snapshot's warnings, which are JSON).
func excerpt(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
