package runtimes_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// summary is what a test compares: kind, version and path of each runtime.
func summary(rs []snapshot.Runtime) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Kind+" "+r.Version+" "+r.Path)
	}
	return out
}

func firstSubmatch(tb testing.TB, pattern, s string) string {
	tb.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		tb.Fatalf("%q not in %q", pattern, s)
	}
	return m[1]
}

// TestCollectHost finds this machine's runtimes and checks each version
// against what the runtime itself prints.
func TestCollectHost(t *testing.T) {
	var want []string
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		want = append(want, "go "+firstSubmatch(t, `go version go(\S+)`, mustRun(t, "/usr/local/go/bin/go", "version"))+" /usr/local/go")
	}
	jdks, _ := filepath.Glob("/usr/lib/jvm/*/bin/java")
	for _, java := range jdks {
		home := filepath.Dir(filepath.Dir(java))
		if fi, err := os.Lstat(home); err != nil || !fi.IsDir() {
			continue // a link to another JDK: reported once, under its real name
		}
		want = append(want, "java "+firstSubmatch(t, `version "([^"]+)"`, mustRun(t, java, "-version"))+" "+home)
	}
	if _, err := os.Stat("/usr/bin/node"); err == nil {
		want = append(want, "node "+firstSubmatch(t, `v(\S+)`, mustRun(t, "/usr/bin/node", "--version"))+" /usr")
	}
	if _, err := os.Stat("/usr/bin/perl"); err == nil {
		want = append(want, "perl "+mustRun(t, "/usr/bin/perl", "-e", `printf "%vd", $^V`)+" /usr")
	}
	if _, err := os.Stat("/usr/bin/php"); err == nil {
		want = append(want, "php "+firstSubmatch(t, `PHP (\S+)`, mustRun(t, "/usr/bin/php", "-n", "-v"))+" /usr")
	}
	if len(want) < 3 {
		t.Fatalf("this machine should have Go, a JDK and Node.js; found %q", want)
	}
	// A root filesystem's essentials (this machine has curl and a CA
	// bundle).
	want = append(want, "system 1 /")
	slices.Sort(want)
	for _, exec := range []bool{false, true} {
		t.Run(map[bool]string{false: "files", true: "executed"}[exec], func(t *testing.T) {
			tg := &source.Tree{Dir: "/", RootFS: true}
			if exec {
				tg.Runner = sandbox.NewLocal("/")
			}
			f := runtimes.NewFinder(runtimes.Options{})
			mustWalk(t, tg, f, "/usr")
			mustWalk(t, tg, f, "/opt")
			got, warnings, err := f.Collect(t.Context(), tg)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
			if diff := cmp.Diff(want, summary(got)); diff != "" {
				t.Errorf("runtimes (-want +got):\n%s", diff)
			}
		})
	}
}

const nodeHeader = `#ifndef SRC_NODE_VERSION_H_
#define SRC_NODE_VERSION_H_

#define NODE_MAJOR_VERSION %s
#define NODE_MINOR_VERSION %s
#define NODE_PATCH_VERSION %s

#define NODE_VERSION_IS_LTS 0
#define NODE_VERSION_IS_RELEASE 1
#endif
`

func header(major, minor, patch string) string {
	return fmt.Sprintf(nodeHeader, major, minor, patch)
}

func mustReadTestdata(tb testing.TB, name string) string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// imageTree is a root filesystem with one installation of every kind, in
// every place the finder must look, built from this machine's node binary
// and small files written here.
func imageTree(tb testing.TB) tree {
	rbDebian := mustReadTestdata(tb, "rbconfig-debian12-ruby3.1.rb")
	// A tool cache's Ruby is relocatable: rbconfig.rb computes its prefix
	// from where it lies.
	rbToolcache := strings.ReplaceAll(rbDebian, `chomp!("/lib/x86_64-linux-gnu/ruby/3.1.0")`, `chomp!("/lib/ruby/3.1.0/x86_64-linux")`)
	const script = "#!/bin/sh\nexit 0\n"
	return tree{
		// Node.js in a tool cache, runnable (this machine's node), its
		// headers saying 20.1.0.
		"opt/hostedtoolcache/node/20.1.0/x64/bin/node":                                  "/usr/bin/node@hardlink",
		"opt/hostedtoolcache/node/20.1.0/x64/include/node/node_version.h":               header("20", "1", "0"),
		"opt/hostedtoolcache/node/20.1.0/x64/lib/node_modules/npm/package.json":         `{"name":"npm","version":"9.6.4"}`,
		"opt/hostedtoolcache/node/20.1.0/x64/lib/node_modules/@types/node/package.json": `{"version":"20.1.0","name":"@types/node"}`,
		"opt/hostedtoolcache/node/20.1.0/x64/lib/node_modules/.bin/npm":                 "../npm/bin/npm-cli.js@link",
		"opt/hostedtoolcache/node/20.1.0/x64/lib/node_modules/broken/package.json":      `{"name":`,
		// A package's own node in node_modules is not a runtime.
		"opt/hostedtoolcache/node/20.1.0/x64/lib/node_modules/node-bin/bin/node": script,
		"opt/hostedtoolcache/node/20.1.0/x64.complete":                           "",
		// nvm: no headers, the version is the folder's name.
		"root/.nvm/versions/node/v18.2.0/bin/node":                          script,
		"root/.nvm/versions/node/v18.2.0/lib/node_modules/npm/package.json": `{"name":"npm","version":"8.9.0"}`,
		// /usr/local/bin/node links into the real prefix: one runtime.
		"usr/local/bin/node": "../lib/nodejs/node-v16.0.0-linux-x64/bin/node@link",
		"usr/local/lib/nodejs/node-v16.0.0-linux-x64/bin/node":                    script,
		"usr/local/lib/nodejs/node-v16.0.0-linux-x64/include/node/node_version.h": header("16", "0", "0"),
		// Node.js without headers or npm: its version cannot be told
		// without running it.
		"usr/bin/node": script,
		// A node that is not executable is not a runtime.
		"srv/app/bin/node": "not a program",

		// Debian's Go: VERSION and src link into /usr/share.
		"usr/lib/go-1.19/VERSION":            "../../share/go-1.19/VERSION@link",
		"usr/lib/go-1.19/bin/go":             script,
		"usr/lib/go-1.19/src":                "../../share/go-1.19/src@link",
		"usr/share/go-1.19/VERSION":          "go1.19.8\ntime 2023-04-04T15:41:08Z\n",
		"usr/share/go-1.19/src/runtime/":     "/",
		"usr/local/go/VERSION":               "go1.22.2\n",
		"usr/local/go/bin/go":                script,
		"usr/local/go/src/runtime/extern.go": "package runtime\n",
		// Below a GOROOT nothing is looked at (the walk is pruned).
		"usr/local/go/test/bin/node": script,
		// VERSION, bin and src, but not Go.
		"srv/project/VERSION":     "1.0\n",
		"srv/project/bin/run":     script,
		"srv/project/src/main.c/": "/",

		// JDKs: Debian's, with its alias link, and SDKMAN's with "current".
		"usr/lib/jvm/java-17-openjdk-amd64/release":         "JAVA_VERSION=\"17.0.15\"\nOS_NAME=\"Linux\"\n",
		"usr/lib/jvm/java-17-openjdk-amd64/bin/java":        script,
		"usr/lib/jvm/java-17-openjdk-amd64/lib/":            "/",
		"usr/lib/jvm/java-1.17.0-openjdk-amd64":             "java-17-openjdk-amd64@link",
		"root/.sdkman/candidates/java/8.0.392-tem/release":  "JAVA_VERSION=\"1.8.0_392\"\n",
		"root/.sdkman/candidates/java/8.0.392-tem/bin/java": script,
		"root/.sdkman/candidates/java/8.0.392-tem/lib/":     "/",
		"root/.sdkman/candidates/java/current":              "8.0.392-tem@link",
		// A JRE without a java program is not a runtime.
		"opt/broken-jre/release":     "JAVA_VERSION=\"11.0.2\"\n",
		"opt/broken-jre/bin/keytool": script,
		"opt/broken-jre/lib/":        "/",

		// Debian's Ruby, its gems, and a relocated one in a tool cache.
		"usr/lib/x86_64-linux-gnu/ruby/3.1.0/rbconfig.rb": rbDebian,
		"usr/bin/ruby3.1": script,
		"usr/lib/ruby/gems/3.1.0/specifications/debug-1.4.0.gemspec":                                                 "",
		"usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec":                                          "",
		"usr/lib/ruby/gems/3.1.0/specifications/default/net-http-0.3.0.gemspec":                                      "",
		"opt/hostedtoolcache/Ruby/3.1.2/x64/lib/ruby/3.1.0/x86_64-linux/rbconfig.rb":                                 rbToolcache,
		"opt/hostedtoolcache/Ruby/3.1.2/x64/bin/ruby3.1":                                                             script,
		"opt/hostedtoolcache/Ruby/3.1.2/x64/lib/ruby/gems/3.1.0/specifications/nokogiri-1.15.4-x86_64-linux.gemspec": "",
		// libruby without its interpreter (as vim pulls in) is no runtime.
		"usr/lib/aarch64-linux-gnu/ruby/3.1.0/rbconfig.rb": strings.ReplaceAll(rbDebian, "x86_64-linux-gnu", "aarch64-linux-gnu"),

		// .NET: two SDKs, one runtime, and what else sdk/ holds.
		"usr/share/dotnet/dotnet":                                 script,
		"usr/share/dotnet/sdk/8.0.100/dotnet.dll":                 "",
		"usr/share/dotnet/sdk/6.0.420/dotnet.dll":                 "",
		"usr/share/dotnet/sdk/NuGetFallbackFolder/":               "/",
		"usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/":    "/",
		"usr/share/dotnet/shared/Microsoft.AspNetCore.App/8.0.0/": "/",
		"usr/bin/dotnet": "../share/dotnet/dotnet@link",
	}
}

func TestCollectImage(t *testing.T) {
	root := t.TempDir()
	mustWriteTree(t, root, imageTree(t))
	const (
		tcNode = "/opt/hostedtoolcache/node/20.1.0/x64"
		tcRuby = "/opt/hostedtoolcache/Ruby/3.1.2/x64"
		nvm    = "/root/.nvm/versions/node/v18.2.0"
		dotnet = "/usr/share/dotnet"
	)
	want := []snapshot.Runtime{
		{Kind: "dotnet-runtime", Version: "8.0.0", Path: dotnet, Executable: dotnet + "/dotnet", Origin: "source"},
		{Kind: "dotnet-sdk", Version: "6.0.420", Path: dotnet, Executable: dotnet + "/dotnet", Origin: "source"},
		{Kind: "dotnet-sdk", Version: "8.0.100", Path: dotnet, Executable: dotnet + "/dotnet", Origin: "source"},
		{Kind: "go", Version: "1.19.8", Path: "/usr/lib/go-1.19", Executable: "/usr/lib/go-1.19/bin/go", Origin: "source"},
		{Kind: "go", Version: "1.22.2", Path: "/usr/local/go", Executable: "/usr/local/go/bin/go", Origin: "source"},
		{Kind: "java", Version: "1.8.0_392", Path: "/root/.sdkman/candidates/java/8.0.392-tem", Executable: "/root/.sdkman/candidates/java/8.0.392-tem/bin/java", Origin: "sdkman"},
		{Kind: "java", Version: "17.0.15", Path: "/usr/lib/jvm/java-17-openjdk-amd64", Executable: "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", Origin: "source"},
		{Kind: "node", Version: "16.0.0", Path: "/usr/local/lib/nodejs/node-v16.0.0-linux-x64", Executable: "/usr/local/lib/nodejs/node-v16.0.0-linux-x64/bin/node", Origin: "source"},
		{Kind: "node", Version: "18.2.0", Path: nvm, Executable: nvm + "/bin/node", Origin: "nvm",
			Packages: []snapshot.RuntimePackage{{Name: "npm", Version: "8.9.0"}}},
		{Kind: "node", Version: "20.1.0", Path: tcNode, Executable: tcNode + "/bin/node", Origin: "toolcache",
			Packages: []snapshot.RuntimePackage{{Name: "@types/node", Version: "20.1.0"}, {Name: "npm", Version: "9.6.4"}}},
		{Kind: "ruby", Version: "3.1.2", Path: tcRuby, Executable: tcRuby + "/bin/ruby3.1", Origin: "toolcache",
			Packages: []snapshot.RuntimePackage{{Name: "nokogiri", Version: "1.15.4"}}},
		{Kind: "ruby", Version: "3.1.2", Path: "/usr", Executable: "/usr/bin/ruby3.1", Origin: "source",
			Packages: []snapshot.RuntimePackage{{Name: "debug", Version: "1.4.0"}, {Name: "json", Version: "2.6.1"}, {Name: "net-http", Version: "0.3.0"}}},
	}
	tg := &source.Tree{Dir: root, RootFS: true}
	f := runtimes.NewFinder(runtimes.Options{})
	mustWalk(t, tg, f, "/")
	got, warnings, err := f.Collect(t.Context(), tg)
	if err != nil {
		t.Fatal(err)
	}
	// The installations here are marker files, not runtimes: their parts
	// are checked on real builds (java_test.go and the others).
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(snapshot.Runtime{}, "Modules")); diff != "" {
		t.Errorf("runtimes (-want +got):\n%s", diff)
	}
	wantWarnings := []string{
		"node at /usr: version unknown (its files do not state it and it was not run); not reported",
		"go at /usr/lib/go-1.19: no standard package list for Go 1.19 (scripts/gen-runtime-lists); its packages and tools are not checked, only cgo",
		"go at /usr/local/go: no standard package list for Go 1.22 (scripts/gen-runtime-lists); its packages and tools are not checked, only cgo",
		"node at /usr/local/lib/nodejs/node-v16.0.0-linux-x64: no built-in module list for Node.js 16; only what the running node reports is checked",
	}
	if diff := cmp.Diff(wantWarnings, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestCollectToolFolder scans a tool cache folder on its own (dir:), with
// and without running its node: the runtime's own answer wins over its
// headers.
func TestCollectToolFolder(t *testing.T) {
	root := t.TempDir()
	files := tree{}
	for name, content := range imageTree(t) {
		if rest, ok := strings.CutPrefix(name, "opt/hostedtoolcache/node/"); ok {
			files[rest] = content
		}
	}
	mustWriteTree(t, root, files)
	running := firstSubmatch(t, `v(\S+)`, mustRun(t, "/usr/bin/node", "--version"))
	for _, tc := range []struct {
		name   string
		runner source.Runner
		want   string
	}{
		{"files", nil, "20.1.0"},
		{"executed", sandbox.NewLocal(root), running},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := &source.Tree{Dir: root, RootFS: false, Runner: tc.runner}
			f := runtimes.NewFinder(runtimes.Options{})
			mustWalk(t, tg, f, "/")
			got, warnings, err := f.Collect(t.Context(), tg)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
			want := []snapshot.Runtime{{
				Kind: "node", Version: tc.want, Path: "/20.1.0/x64", Executable: "/20.1.0/x64/bin/node", Origin: "toolcache",
				Packages: []snapshot.RuntimePackage{{Name: "@types/node", Version: "20.1.0"}, {Name: "npm", Version: "9.6.4"}},
			}}
			// Discovery only: the parts of this node are TestNodeHost's.
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(snapshot.Runtime{}, "Modules")); diff != "" {
				t.Errorf("runtimes (-want +got):\n%s", diff)
			}
		})
	}
}

// A runtime that fails when run keeps the version its files state, with a
// warning that names it.
func TestCollectRunFails(t *testing.T) {
	root := t.TempDir()
	mustWriteTree(t, root, tree{
		"go/VERSION":      "go1.21.0\n",
		"go/bin/go":       "#!/bin/sh\necho 'go: cannot find GOROOT directory' >&2\nexit 2\n",
		"go/src/runtime/": "/",
	})
	tg := &source.Tree{Dir: root, Runner: sandbox.NewLocal(root)}
	f := runtimes.NewFinder(runtimes.Options{})
	mustWalk(t, tg, f, "/")
	got, warnings, err := f.Collect(t.Context(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"go 1.21.0 /go"}, summary(got)); diff != "" {
		t.Errorf("runtimes (-want +got):\n%s", diff)
	}
	wantWarnings := []string{
		"go at /go: /go/bin/go version: exit status 2: go: cannot find GOROOT directory",
		"go at /go: go env not run, cgo checked from files only: exited with status 2: go: cannot find GOROOT directory",
		"go at /go: no standard package list for Go 1.21 (scripts/gen-runtime-lists); its packages and tools are not checked, only cgo",
	}
	if diff := cmp.Diff(wantWarnings, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
