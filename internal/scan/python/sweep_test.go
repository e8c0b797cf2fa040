package python_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/python"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// TestSweepSurvivesBadModules adds modules that crash, hang, spin, raise
// and exit to a copy of a real build: each gets its own status and the
// modules after them are still imported.
func TestSweepSurvivesBadModules(t *testing.T) {
	src := testenv.RequirePython(t, "3.12")
	root := t.TempDir()
	prefix := filepath.Join(root, "py")
	mustCopy(t, src, prefix)
	lib := filepath.Join(prefix, "lib", "python3.12")
	for name, code := range map[string]string{
		"zz_crash.py": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
		// SIGALRM blocked: only the watchdog can end this one.
		"zz_hang.py":   "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\ntime.sleep(120)\n",
		"zz_loop.py":   "while True:\n    pass\n",
		"zz_raise.py":  "raise RuntimeError('boom')\n",
		"zz_exit.py":   "import sys\nsys.exit(3)\n",
		"zz_print.py":  "print('{\"t\":\"ok\",\"m\":\"zz_raise\"}')\n",
		"zzz_after.py": "x = 1\n",
	} {
		if err := os.WriteFile(filepath.Join(lib, name), []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	rts := collect(t, &source.Tree{Dir: root, Runner: sandbox.NewLocal(root)}, python.Options{ModuleTimeout: time.Second})
	t.Logf("sweep took %s", time.Since(start))
	if len(rts) != 1 {
		t.Fatalf("runtimes: %+v", rts)
	}
	got := map[string]snapshot.Module{}
	for _, m := range rts[0].Modules {
		if strings.HasPrefix(m.Name, "zz") || m.Name == "json" {
			if m.Status == snapshot.StatusCrash || m.Status == snapshot.StatusTimeout {
				m.Error = strings.SplitN(m.Error, " ", 4)[0] // the wording's first word is enough
			}
			got[m.Name] = m
		}
	}
	want := map[string]snapshot.Module{
		"json":      {Name: "json", Kind: "package", Status: "ok"},
		"zz_crash":  {Name: "zz_crash", Kind: "pure", Status: "crash", Error: "interpreter"},
		"zz_hang":   {Name: "zz_hang", Kind: "pure", Status: "timeout", Error: "import"},
		"zz_loop":   {Name: "zz_loop", Kind: "pure", Status: "timeout", Error: "import"},
		"zz_raise":  {Name: "zz_raise", Kind: "pure", Status: "import-error", Error: "RuntimeError: boom"},
		"zz_exit":   {Name: "zz_exit", Kind: "pure", Status: "import-error", Error: "SystemExit: 3"},
		"zz_print":  {Name: "zz_print", Kind: "pure", Status: "ok"},
		"zzz_after": {Name: "zzz_after", Kind: "pure", Status: "ok"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
}

// TestDiscovery lays real builds out the way tool caches, conda and
// source installs do, in one root filesystem, and checks what is found.
func TestDiscovery(t *testing.T) {
	src := testenv.RequirePython(t, "3.8")
	version := filepath.Base(src)
	root := t.TempDir()
	layouts := map[string]string{
		"/opt/hostedtoolcache/Python/" + version + "/x64": "toolcache",
		"/opt/conda":                       "conda",
		"/opt/conda/envs/py38":             "conda",
		"/root/.pyenv/versions/" + version: "pyenv",
		"/usr/local":                       "source",
	}
	// Parents before children: cp into an existing directory would nest
	// the copy (/opt/conda/3.8.18) when /opt/conda/envs came first.
	for _, p := range slices.Sorted(maps.Keys(layouts)) {
		mustCopy(t, src, filepath.Join(root, p))
	}
	for _, d := range []string{"/opt/conda/conda-meta", "/opt/conda/envs/py38/conda-meta"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// conda's package cache holds an unpacked python that is not an
	// environment; it has info/index.json.
	cache := filepath.Join(root, "opt/conda/pkgs/python-"+version+"-h0")
	mustCopy(t, src, cache)
	if err := os.MkdirAll(filepath.Join(cache, "info"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "info", "index.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A venv has a lib/python3.8 without os.py: not an installation.
	if err := os.MkdirAll(filepath.Join(root, "home/u/venv/lib/python3.8/site-packages"), 0o755); err != nil {
		t.Fatal(err)
	}

	rts := collect(t, &source.Tree{Dir: root, RootFS: true}, python.Options{})
	got := map[string]string{}
	for _, rt := range rts {
		got[rt.Path] = rt.Origin
		if rt.Version != version {
			t.Errorf("%s: version %s, want %s", rt.Path, rt.Version, version)
		}
		if rt.Executable != rt.Path+"/bin/python3.8" {
			t.Errorf("%s: executable %s", rt.Path, rt.Executable)
		}
	}
	if diff := cmp.Diff(layouts, got); diff != "" {
		t.Errorf("installations (-want +got):\n%s", diff)
	}
}
