package tools_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/tools"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// tree is a file tree a test writes under a temporary root: a value ending
// in "@link" is a link target, anything else a file's content; files whose
// content starts with "#!" are executable.
type tree map[string]string

func mustWriteTree(tb testing.TB, root string, files tree) {
	tb.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if target, ok := strings.CutSuffix(content, "@link"); ok {
			if err := os.Symlink(target, p); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			tb.Fatal(err)
		}
	}
}

func names(ts []snapshot.Tool) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[t.Name] = t.Path
	}
	return m
}

func TestListTree(t *testing.T) {
	const script = "#!/bin/sh\necho hi\n"
	tests := []struct {
		name  string
		files tree
		opts  tools.Options
		want  map[string]string
	}{{
		name: "usr-merged aliases listed once, under the first PATH dir",
		files: tree{
			"usr/bin/git": script, "usr/sbin/ip": script,
			"bin": "usr/bin@link", "sbin": "usr/sbin@link",
		},
		want: map[string]string{"git": "/usr/bin/git", "ip": "/usr/sbin/ip"},
	}, {
		name: "earlier PATH dir shadows a later one",
		files: tree{
			"usr/local/bin/git": script, "usr/bin/git": script, "usr/bin/make": script,
		},
		want: map[string]string{"git": "/usr/local/bin/git", "make": "/usr/bin/make"},
	}, {
		name: "not executable, directories and dangling links are not tools",
		files: tree{
			"usr/bin/readme": "text", "usr/bin/sub/x": script,
			"usr/bin/dangling": "/nowhere@link", "usr/bin/tool": script,
		},
		want: map[string]string{"tool": "/usr/bin/tool"},
	}, {
		name: "absolute links resolve inside the root",
		files: tree{
			"etc/alternatives/java":  "/usr/lib/jvm/x/bin/java@link",
			"usr/lib/jvm/x/bin/java": script,
			"usr/bin/java":           "/etc/alternatives/java@link",
		},
		want: map[string]string{"java": "/usr/bin/java"},
	}, {
		name: "links escaping the root resolve inside it",
		// ../../../../usr/bin/git and /usr/bin/git exist on this
		// machine, but not in the image: neither is a tool.
		files: tree{
			"bin/evil": "../../../../../../../../usr/bin/git@link",
			"bin/abs":  "/usr/bin/git@link",
		},
		opts: tools.Options{Dirs: []string{"/bin"}},
		want: map[string]string{},
	}, {
		name: "extra dirs come after the standard ones",
		files: tree{
			"opt/conda/bin/python": script, "opt/conda/bin/conda": script,
			"usr/bin/python": script,
		},
		opts: tools.Options{ExtraDirs: []string{"/opt/conda/bin", "relative/bin"}},
		want: map[string]string{"python": "/usr/bin/python", "conda": "/opt/conda/bin/conda"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			mustWriteTree(t, root, tc.files)
			got, warnings, err := tools.Collect(t.Context(), &source.Tree{Dir: root, RootFS: true}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
			if diff := cmp.Diff(tc.want, names(got)); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}
		})
	}
}

// TestListHost checks the listing of this machine against bash's own PATH
// search (type -P), name by name.
func TestListHost(t *testing.T) {
	got, _, err := tools.Collect(t.Context(), &source.Tree{Dir: "/", RootFS: true}, tools.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 100 {
		t.Fatalf("only %d tools on this machine's PATH", len(got))
	}
	args := []string{"-c", `for n in "$@"; do printf '%s\n' "$(type -P -- "$n")"; done`, "bash"}
	for _, tool := range got {
		args = append(args, tool.Name)
	}
	cmd := exec.Command("bash", args...)
	cmd.Env = []string{"PATH=" + strings.Join(tools.StandardDirs(), ":")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(got) {
		t.Fatalf("bash answered %d names for %d tools", len(lines), len(got))
	}
	for i, tool := range got {
		if lines[i] != tool.Path {
			t.Errorf("%s: listed at %s, bash finds %q", tool.Name, tool.Path, lines[i])
		}
	}
}

// hostVersion runs a tool of this machine and returns the first submatch of
// pattern in its combined output: the expectation the probe must meet.
func hostVersion(t *testing.T, pattern string, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	m := regexp.MustCompile(pattern).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("%s %v printed %q", name, args, out)
	}
	return m[1]
}

// onPath finds a program as Collect does: in the standard PATH, then extra.
func onPath(name string, extra []string) string {
	for _, d := range append(tools.StandardDirs(), extra...) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func TestProbeHost(t *testing.T) {
	tests := []struct {
		tool    string
		args    []string
		pattern string
	}{
		{"git", []string{"--version"}, `git version (\S+)`},
		{"go", []string{"version"}, `go version go(\S+)`},
		{"node", []string{"--version"}, `v(\S+)`},
		{"java", []string{"-version"}, `version "([^"]+)"`},
		{"bash", []string{"-c", `echo "$BASH_VERSION"`}, `^(\d+\.\d+\.\d+)`},
		{"make", []string{"--version"}, `GNU Make (\S+)`},
		// Maven colours its banner even into a pipe.
		{"mvn", []string{"--version"}, `Apache Maven (\d[\d.]*)`},
		// psql is a link to Debian's pg_wrapper, which decides what to
		// run from the name it was called by.
		{"psql", []string{"--version"}, `\(PostgreSQL\) (\S+)`},
	}
	// A generous timeout: a JVM (mvn) on a loaded machine is slow to start,
	// and this test is about what the probes read, not how fast. Go's
	// official install (CI's too) is in /usr/local/go/bin, off the
	// standard PATH: the image's configured PATH adds it, as here.
	opts := tools.Options{Timeout: 60 * time.Second, ExtraDirs: []string{filepath.Dir(testenv.RequireTool(t, "go"))}}
	got, warnings, err := tools.Collect(t.Context(), &source.Tree{Dir: "/", RootFS: true, Runner: sandbox.NewLocal("/")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %q", warnings)
	}
	byName := map[string]snapshot.Tool{}
	for _, tool := range got {
		byName[tool.Name] = tool
	}
	for _, tc := range tests {
		t.Run(tc.tool, func(t *testing.T) {
			path := onPath(tc.tool, opts.ExtraDirs)
			testenv.Require(t, path != "", "%s is not on the standard PATH here, nor in %s", tc.tool, opts.ExtraDirs)
			want := snapshot.Tool{
				Name: tc.tool, Path: byName[tc.tool].Path, Status: tools.StatusOK,
				Version: hostVersion(t, tc.pattern, path, tc.args...),
			}
			if diff := cmp.Diff(want, byName[tc.tool]); diff != "" {
				t.Errorf("probe (-want +got):\n%s", diff)
			}
		})
	}
	// A tool outside the curated list is listed but not run.
	if tool, ok := byName["ls"]; !ok || tool.Status != "" || tool.Version != "" {
		t.Errorf("ls: %+v, want listed without a probe", tool)
	}
}

func TestProbeOutcomes(t *testing.T) {
	root := t.TempDir()
	mustWriteTree(t, root, tree{
		// git hangs, with a child that keeps its output open: it
		// times out twice (300ms, then 600ms on its second try).
		"bin/git":  "#!/bin/sh\nsleep 100 &\nsleep 100\n",
		"bin/make": "#!/bin/sh\necho 'GNU Make 4.3'\necho 'Built for x86_64-pc-linux-gnu'\n",
		"bin/curl": "#!/bin/sh\necho 'curl: (6) something is wrong' >&2\nexit 3\n",
		"bin/jq":   "#!/bin/sh\necho 'usage: jq [options]'\n",
		"bin/java": "#!/bin/sh\necho 'openjdk version \"21.0.2\" 2024-01-16' >&2\n",
		"bin/zstd": "#!/bin/sh\nkill -SEGV $$\n",
		// bin/gh leads out of the root on this machine, but inside the
		// image to the script below.
		"bin/gh":            "../../../../../../../../usr/bin/gh-inside@link",
		"usr/bin/gh-inside": "#!/bin/sh\necho 'gh version 0.0.1-inroot (2024-01-01)'\n",
		"bin/ls":            "#!/bin/sh\nexit 1\n",
		// Alpine's applets are links to BusyBox, which answers no
		// --version: listed, not probed.
		"bin/busybox": "#!/bin/sh\nexit 1\n",
		"bin/tar":     "/bin/busybox@link",
	})
	tg := &source.Tree{Dir: root, RootFS: false, Runner: sandbox.NewLocal(root)}
	got, _, err := tools.Collect(t.Context(), tg, tools.Options{Dirs: []string{"/bin"}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := []snapshot.Tool{
		{Name: "busybox", Path: "/bin/busybox"},
		{Name: "curl", Path: "/bin/curl", Status: "failed", Error: "exit status 3: curl: (6) something is wrong"},
		{Name: "gh", Path: "/bin/gh", Status: "ok", Version: "0.0.1-inroot"},
		{Name: "git", Path: "/bin/git", Status: "timeout", Error: "no answer within 600ms"},
		{Name: "java", Path: "/bin/java", Status: "ok", Version: "21.0.2"},
		{Name: "jq", Path: "/bin/jq", Status: "failed", Error: "no version in output: usage: jq [options]"},
		{Name: "ls", Path: "/bin/ls"},
		{Name: "make", Path: "/bin/make", Status: "ok", Version: "4.3"},
		{Name: "tar", Path: "/bin/tar"},
		{Name: "zstd", Path: "/bin/zstd", Status: "failed", Error: "killed by segmentation fault"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
}

// A cancelled scan stops probing and says so.
func TestCollectCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := tools.Collect(ctx, &source.Tree{Dir: "/", RootFS: true, Runner: sandbox.NewLocal("/")}, tools.Options{})
	if err == nil {
		t.Fatal("Collect with a cancelled context succeeded")
	}
}

func BenchmarkCollectHost(b *testing.B) {
	tg := &source.Tree{Dir: "/", RootFS: true, Runner: sandbox.NewLocal("/")}
	for b.Loop() {
		got, _, err := tools.Collect(b.Context(), tg, tools.Options{})
		if err != nil {
			b.Fatal(err)
		}
		probed := 0
		for _, tool := range got {
			if tool.Status != "" {
				probed++
			}
		}
		b.ReportMetric(float64(len(got)), "tools")
		b.ReportMetric(float64(probed), "probed")
	}
}
