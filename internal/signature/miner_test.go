package signature_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/signature"
)

// add feeds every log through Extract and the miner and returns the ids
// the miner finally assigns to them (Match after all are added, so that a
// template that generalised on a later variant counts once).
func add(t *testing.T, m *signature.Miner, logs ...string) []string {
	t.Helper()
	for _, l := range logs {
		m.Add(signature.Extract(l))
	}
	ids := make([]string, len(logs))
	for i, l := range logs {
		got, ok := m.Match(signature.Extract(l))
		if !ok {
			t.Fatalf("Match(%q) found nothing after Add", signature.Extract(l))
		}
		ids[i] = got.ID
	}
	return ids
}

func TestSameFailureSameID(t *testing.T) {
	tests := []struct {
		name string
		logs []string
	}{
		{"sqlite across runners and pythons", []string{
			sqliteTraceback,
			pytestCollection,
			"Traceback (most recent call last):\n  File \"/Users/runner/work/x/x/run.py\", line 88, in <module>\n    import sqlite3\nModuleNotFoundError: No module named '_sqlite3'\n",
			"FAILED tests/test_store.py::test_open - ModuleNotFoundError: No module named '_sqlite3'\n",
			// The same import failure re-raised as its base class.
			"Traceback (most recent call last):\n  File \"/opt/hostedtoolcache/Python/3.9.5/x64/lib/python3.9/sqlite3/dbapi2.py\", line 27, in <module>\n    from _sqlite3 import *\nImportError: No module named '_sqlite3'\n",
			// A wrapper that pads the name with a second space.
			"ModuleNotFoundError: No module named  '_sqlite3'\n",
			// Python 2.7's words for it.
			"Traceback (most recent call last):\n  File \"/opt/hostedtoolcache/Python/2.7.18/x64/lib/python2.7/sqlite3/dbapi2.py\", line 28, in <module>\n    from _sqlite3 import *\nImportError: No module named _sqlite3\n",
		}},
		{"docker pull timeouts to different IPs and ports", []string{
			"Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp 54.236.113.205:443: i/o timeout\n",
			"Error response from daemon: Get \"https://registry-1.docker.io/v2/library/python/manifests/3.7\": dial tcp 3.216.34.172:8443: i/o timeout\n",
		}},
		{"docker pull timeouts to different registries", []string{
			"Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)\n",
			"Error response from daemon: Get \"https://ghcr.io/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)\n",
			"Error response from daemon: Get \"https://quay.io/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)\n",
		}},
		{"OOM kills of different sizes and pids", []string{
			"Out of memory: Killed process 2841 (python3) total-vm:8123456kB, anon-rss:4096000kB, file-rss:0kB\n",
			"Out of memory: Killed process 991 (node) total-vm:123kB, anon-rss:77kB, file-rss:12kB\n",
		}},
		{"go test with other durations", []string{goTest, "--- FAIL: TestParse (1.25s)\nFAIL\tgithub.com/acme/api/parse\t3.1s\n"}},
		{"git fatal for other repos", []string{
			"fatal: unable to access 'https://github.com/acme/api.git/': Could not resolve host: github.com\n",
			"fatal: unable to access 'https://github.com/other/tool/': Could not resolve host: github.com\n",
		}},
		{"curl to other ports and timings", []string{
			"curl: (28) Failed to connect to downloads.example.com port 443 after 130021 ms: Timeout was reached\n",
			"curl: (28) Failed to connect to downloads.example.com port 8443 after 75 ms: Timeout was reached\n",
		}},
		{"pytest assertion values", []string{pytestFailed, "FAILED tests/test_api.py::test_delete - AssertionError: assert 500 == 204\n"}},
		{"npm 404 of other packages", []string{npm404, "npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry.npmjs.org/@acme%2fui - Not found\n"}},
		{"maven artifacts in other versions", []string{mavenDeps, "[ERROR] Failed to execute goal on project app: Could not resolve dependencies for project com.acme:app:jar:1.1: Could not find artifact com.acme:lib:jar:2.4.0 in central (https://repo.maven.apache.org/maven2) -> [Help 1]\n"}},
		{"gradle artifacts in other versions", []string{gradle, "* What went wrong:\nExecution failed for task ':web:compileJava'.\n> Could not find com.acme:lib:3.0.0.\n\nBUILD FAILED in 1m 3s\n"}},
		{"exit codes", []string{"Error: Process completed with exit code 1.\n", "##[error]Process completed with exit code 2.\n"}},
		{"shared library from other paths", []string{
			"/opt/hostedtoolcache/Python/3.7.17/x64/bin/python3: error while loading shared libraries: libpython3.7m.so.1.0: cannot open shared object file: No such file or directory\n",
			"/usr/local/bin/python3: error while loading shared libraries: libpython3.7m.so.1.0: cannot open shared object file: No such file or directory\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := add(t, signature.NewMiner(signature.Options{}), tt.logs...)
			for i, id := range ids {
				if id != ids[0] {
					t.Errorf("log %d has id %s, log 0 has %s:\n%q\n%q", i, id, ids[0],
						signature.Mask(signature.Extract(tt.logs[i])), signature.Mask(signature.Extract(tt.logs[0])))
				}
			}
		})
	}
}

func TestIdentifiersMakeDifferentSignatures(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"missing module", "ModuleNotFoundError: No module named '_sqlite3'", "ModuleNotFoundError: No module named 'requests'"},
		{"python 2 module names", "ImportError: No module named _sqlite3", "ImportError: No module named yaml"},
		{"python 2 and 3 module names", "ImportError: No module named _sqlite3", "ModuleNotFoundError: No module named 'requests'"},
		{"python 3 module names, either class", "ImportError: No module named '_sqlite3'", "ModuleNotFoundError: No module named 'requests'"},
		{"import name", "ImportError: cannot import name 'soft_unicode' from 'markupsafe' (/x/y/z.py)", "ImportError: cannot import name 'escape' from 'jinja2' (/x/y/z.py)"},
		{"ruby", "cannot load such file -- nokogiri/nokogiri (LoadError)", "cannot load such file -- sqlite3/sqlite3_native (LoadError)"},
		{"node", "Error: Cannot find module 'express'", "Error: Cannot find module 'esbuild'"},
		{"php", "PHP Warning:  PHP Startup: Unable to load dynamic library 'pdo_sqlite' (tried: /usr/lib/php/x)", "PHP Warning:  PHP Startup: Unable to load dynamic library 'intl' (tried: /usr/lib/php/x)"},
		{"shared library", "python3: error while loading shared libraries: libpython3.7m.so.1.0: cannot open shared object file: No such file or directory", "python3: error while loading shared libraries: libffi.so.7: cannot open shared object file: No such file or directory"},
		{"go std package", "package log/slog is not in std (/usr/local/go/src/log/slog)", "package slices is not in std (/usr/local/go/src/slices)"},
		{"command", "/home/runner/work/_temp/a.sh: line 1: poetry: command not found", "/home/runner/work/_temp/b.sh: line 3: yarn: command not found"},
		{"header", "x.c:1:10: fatal error: sqlite3.h: No such file or directory", "x.c:1:10: fatal error: ffi.h: No such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := signature.NewMiner(signature.Options{})
			// Many messages of both kinds, interleaved, as the background sends them.
			var ida, idb signature.Match
			for i := 0; i < 5; i++ {
				ida = m.Add(tt.a)
				idb = m.Add(tt.b)
			}
			if ida.ID == idb.ID {
				t.Errorf("one signature %s (%q) for\n%q\n%q", ida.ID, ida.Template, tt.a, tt.b)
			}
			if m.Len() != 2 {
				t.Errorf("%d clusters, want 2", m.Len())
			}
		})
	}
}

func TestIDsDoNotDependOnOrder(t *testing.T) {
	var msgs []string
	for _, mod := range []string{"_sqlite3", "requests", "yaml", "numpy._core", "_ctypes"} {
		msgs = append(msgs, "ModuleNotFoundError: No module named '"+mod+"'")
	}
	for i := 0; i < 20; i++ {
		msgs = append(msgs,
			fmt.Sprintf("Error response from daemon: Get \"https://registry-%d.example.com/v2/\": dial tcp 10.0.%d.%d:443: i/o timeout", i%3, i, i*7),
			fmt.Sprintf("curl: (28) Failed to connect to mirror%d.example.org port %d after %d ms: Timeout was reached", i%4, 8000+i, i*100),
			fmt.Sprintf("--- FAIL: TestShard%c (%d.%02ds)", 'A'+rune(i%5), i, i),
			fmt.Sprintf("Out of memory: Killed process %d (java) total-vm:%dkB", 1000+i, 4096*i),
			fmt.Sprintf("fatal: unable to access 'https://github.com/acme/repo%d.git/': The requested URL returned error: %d", i, 500+i%4),
		)
	}
	templates := func(seed uint64) []string {
		m := signature.NewMiner(signature.Options{})
		shuffled := append([]string(nil), msgs...)
		r := rand.New(rand.NewPCG(seed, 1))
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, msg := range shuffled {
			m.Add(msg)
		}
		var out []string
		for _, msg := range msgs {
			got, ok := m.Match(msg)
			if !ok {
				t.Fatalf("seed %d: Match(%q) found nothing", seed, msg)
			}
			if got.ID != signature.IDOf(got.Template) {
				t.Fatalf("id %s is not IDOf(%q)", got.ID, got.Template)
			}
			out = append(out, got.ID+" "+got.Template)
		}
		return out
	}
	want := templates(1)
	for seed := uint64(2); seed < 6; seed++ {
		if diff := cmp.Diff(want, templates(seed)); diff != "" {
			t.Errorf("seed %d assigns other signatures (-seed 1 +seed %d):\n%s", seed, seed, diff)
		}
	}
	distinct := map[string]bool{}
	for _, w := range want {
		distinct[w] = true
	}
	if len(distinct) != 5+5 { // five modules, five families
		keys := make([]string, 0, len(distinct))
		for k := range distinct {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Errorf("%d signatures, want 10:\n%v", len(distinct), keys)
	}
}

func TestGeneralisationReportsPrevious(t *testing.T) {
	m := signature.NewMiner(signature.Options{})
	first := m.Add("Connection to db-primary refused")
	if !first.Created || first.Previous != "" || first.Template != "Connection to db-primary refused" {
		t.Fatalf("first Add = %+v", first)
	}
	again := m.Add("Connection to db-primary refused")
	if diff := cmp.Diff(signature.Match{ID: first.ID, Template: first.Template}, again); diff != "" {
		t.Errorf("same message again (-want +got):\n%s", diff)
	}
	general := m.Add("Connection to db-replica refused")
	want := signature.Match{ID: signature.IDOf("Connection to <*> refused"), Template: "Connection to <*> refused", Previous: first.ID}
	if diff := cmp.Diff(want, general); diff != "" {
		t.Errorf("generalising Add (-want +got):\n%s", diff)
	}
	if got, _ := m.Match("Connection to db-primary refused"); got.ID != general.ID {
		t.Errorf("the first message now matches %s, want %s", got.ID, general.ID)
	}

	// A restarted miner seeded with the stored template continues with it.
	restarted := signature.NewMiner(signature.Options{})
	if s := restarted.Seed(general.Template); s.ID != general.ID {
		t.Errorf("Seed = %+v, want id %s", s, general.ID)
	}
	if got := restarted.Add("Connection to db-primary refused"); got.ID != general.ID || got.Created {
		t.Errorf("Add after Seed = %+v, want id %s", got, general.ID)
	}
	if restarted.Len() != 1 {
		t.Errorf("restarted miner has %d clusters, want 1", restarted.Len())
	}
}

func TestMatchDoesNotAdd(t *testing.T) {
	m := signature.NewMiner(signature.Options{})
	if _, ok := m.Match("ModuleNotFoundError: No module named '_sqlite3'"); ok {
		t.Fatal("Match found a signature in an empty miner")
	}
	sig := m.Add("ModuleNotFoundError: No module named '_sqlite3'")
	got, ok := m.Match("ModuleNotFoundError: No module named '_sqlite3'")
	if !ok || got.ID != sig.ID {
		t.Errorf("Match = %+v, %v; want %s", got, ok, sig.ID)
	}
	if _, ok := m.Match("ModuleNotFoundError: No module named 'requests'"); ok {
		t.Error("Match merged another module into the _sqlite3 signature")
	}
	if m.Len() != 1 {
		t.Errorf("Match added clusters: %d", m.Len())
	}
	if diff := cmp.Diff([]signature.Match{{ID: sig.ID, Template: sig.Template}}, m.Templates()); diff != "" {
		t.Errorf("Templates (-want +got):\n%s", diff)
	}
}

func TestEmptyMessage(t *testing.T) {
	m := signature.NewMiner(signature.Options{})
	first := m.Add("")
	if again := m.Add(" \t"); again.ID != first.ID || again.Created {
		t.Errorf("second empty message = %+v, first %+v", again, first)
	}
	if m.Len() != 1 {
		t.Errorf("Len = %d, want 1", m.Len())
	}
}

func TestMaxClusters(t *testing.T) {
	m := signature.NewMiner(signature.Options{MaxClusters: 2})
	m.Add("ModuleNotFoundError: No module named 'a'")
	m.Add("ModuleNotFoundError: No module named 'b'")
	got := m.Add("ModuleNotFoundError: No module named 'c'")
	want := signature.Match{ID: signature.IDOf("ModuleNotFoundError: No module named 'c'"), Template: "ModuleNotFoundError: No module named 'c'"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Add beyond MaxClusters (-want +got):\n%s", diff)
	}
	if m.Len() != 2 {
		t.Errorf("Len = %d, want 2", m.Len())
	}
}

func TestMinerConcurrent(t *testing.T) {
	m := signature.NewMiner(signature.Options{})
	corpus := generateCorpus(2000, 7)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(corpus); i += 4 {
				m.Add(corpus[i])
				m.Match(corpus[(i+1)%len(corpus)])
			}
		}()
	}
	wg.Wait()
	for _, msg := range corpus {
		if _, ok := m.Match(msg); !ok {
			t.Fatalf("Match(%q) found nothing after concurrent Adds", msg)
		}
	}
}
