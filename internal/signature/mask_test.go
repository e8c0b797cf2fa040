package signature_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/signature"
)

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		// Kept identifiers.
		{"ModuleNotFoundError: No module named '_sqlite3'", "ModuleNotFoundError: No module named '_sqlite3'"},
		// Python 3's two texts of one failed import are one message, and
		// Python 2's unquoted one joins them.
		{"ImportError: No module named _sqlite3", "ModuleNotFoundError: No module named '_sqlite3'"},
		{"E   ImportError: No module named yaml.constructor", "E ModuleNotFoundError: No module named 'yaml.constructor'"},
		{"ImportError: No module named _sqlite3 ImportError: No module named 'c'", "ModuleNotFoundError: No module named '_sqlite3' ModuleNotFoundError: No module named 'c'"},
		// Not a module name, or not Python's class: left as they are.
		{"ImportError: No module named <QUOTED>", "ImportError: No module named <QUOTED>"},
		{"ImportError: No module named a-b", "ImportError: No module named a-b"},
		{"MyImportError: No module named yaml", "MyImportError: No module named yaml"},
		{"ImportError: No module named '_sqlite3'", "ModuleNotFoundError: No module named '_sqlite3'"},
		{"E   ImportError:   No module named 'yaml'", "E ModuleNotFoundError: No module named 'yaml'"},
		{"ImportError: No module named 'a.b' ImportError: No module named 'c'", "ModuleNotFoundError: No module named 'a.b' ModuleNotFoundError: No module named 'c'"},
		{"ImportError: No module named 'x' (pinned once)", "ModuleNotFoundError: No module named 'x' (pinned once)"},
		{"MyImportError: No module named 'yaml'", "MyImportError: No module named 'yaml'"},
		{"ImportError: cannot import name 'soft_unicode' from 'markupsafe' (/opt/hostedtoolcache/Python/3.9.1/x64/lib/python3.9/site-packages/markupsafe/__init__.py)",
			"ImportError: cannot import name 'soft_unicode' from 'markupsafe' (<PATH>)"},
		// Extra spaces after a phrase still name its word.
		{"cannot import name  '' from 00", "cannot import name '' from 00"},
		{"cannot import name  'x' from 'y'", "cannot import name 'x' from 'y'"},
		{"ModuleNotFoundError: No module named  '_sqlite3'", "ModuleNotFoundError: No module named '_sqlite3'"},
		{"ImportError: No module named \t '_sqlite3'", "ModuleNotFoundError: No module named '_sqlite3'"},
		// A pin whose reason masking takes away is not kept (the output must
		// mask to itself): here "' from " loses its quote to <QUOTED>.
		{"'a cannot import name 'b' from 00", "<QUOTED> from <NUM>"},
		// A quoted value with spaces joins two words; the joined word is not
		// judged a path again.
		{"a=`x y`/b/c A0X(` `\\", "a=<QUOTED>/b/c A0X(<QUOTED>\\"},
		// Placeholders lengthen a message; the tokens beyond MaxMessage are
		// dropped whole, so that masking again does not cut it.
		{strings.Repeat("0 ", 40) + strings.Repeat("x", 900), strings.TrimSuffix(strings.Repeat("<NUM> ", 40), " ")},
		{strings.Repeat("0g", 500), ""},
		{"AttributeError: module 'collections' has no attribute 'Callable'", "AttributeError: module 'collections' has no attribute 'Callable'"},
		{"AttributeError: 'NoneType' object has no attribute 'split'", "AttributeError: <QUOTED> object has no attribute <QUOTED>"},
		{"/usr/lib/ruby/3.4.0/rubygems/core_ext/kernel_require.rb:136:in 'Kernel#require': cannot load such file -- nokogiri/nokogiri (LoadError)",
			"<PATH> <QUOTED>: cannot load such file -- nokogiri/nokogiri (LoadError)"},
		{"Error: Cannot find module 'express'", "Error: Cannot find module 'express'"},
		{"Error: Cannot find module '/home/runner/work/app/app/dist/index.js'", "Error: Cannot find module <QUOTED>"},
		{"src/app.ts:12:5 - error TS2307: Cannot find module '@acme/ui' or its corresponding type declarations.",
			"<PATH> - error TS2307: Cannot find module '@acme/ui' or its corresponding type declarations."},
		{"PHP Warning:  PHP Startup: Unable to load dynamic library 'pdo_sqlite' (tried: /usr/lib/php/20210902/pdo_sqlite (/usr/lib/php/20210902/pdo_sqlite: cannot open shared object file: No such file or directory)) in Unknown on line 0",
			"PHP Warning: PHP Startup: Unable to load dynamic library 'pdo_sqlite' (tried: <PATH> (/usr/lib/php/20210902/pdo_sqlite: cannot open shared object file: No such file or directory)) in Unknown on line <NUM>"},
		{"python3: error while loading shared libraries: libpython3.7m.so.1.0: cannot open shared object file: No such file or directory",
			"python3: error while loading shared libraries: libpython3.7m.so.1.0: cannot open shared object file: No such file or directory"},
		{"ImportError: libsqlite3.so.0: cannot open shared object file: No such file or directory", "ImportError: libsqlite3.so.0: cannot open shared object file: No such file or directory"},
		{"/usr/bin/ld: cannot find -lsqlite3: No such file or directory", "<PATH>: cannot find -lsqlite3: No such file or directory"},
		{"src/_sqlite/module.h:27:10: fatal error: sqlite3.h: No such file or directory", "<PATH>: fatal error: sqlite3.h: No such file or directory"},
		{"package log/slog is not in std (/opt/hostedtoolcache/go/1.20.14/x64/src/log/slog)", "package log/slog is not in std (<PATH>)"},
		{"/home/runner/work/_temp/9c1e.sh: line 1: poetry: command not found", "<PATH>: line <NUM>: poetry: command not found"},
		{"zsh: command not found: yarn", "zsh: command not found: yarn"},
		{"/bin/sh: 1: yarn: not found", "<PATH>: <NUM>: yarn: not found"},
		// Variable parts.
		{"Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp 54.236.113.205:443: i/o timeout",
			"Error response from daemon: Get \"https://registry-1.docker.io/<URL>\": dial tcp <IP>:<NUM>: i/o timeout"},
		{"curl: (28) Failed to connect to example.com port 443 after 130021 ms: Timeout was reached",
			"curl: (<NUM>) Failed to connect to example.com port <NUM> after <NUM> ms: Timeout was reached"},
		{"fatal: unable to access 'https://x-access-token:ghs_abc@github.com/acme/api.git/': The requested URL returned error: 403",
			"fatal: unable to access 'https://github.com/<URL>': The requested URL returned error: <NUM>"},
		{"requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /simple/numpy/?page=2",
			"requests.exceptions.ConnectionError: HTTPSConnectionPool(host=<QUOTED>, port=<NUM>): Max retries exceeded with url: <PATH>"},
		{"see http://localhost:8080 and https://h.example/", "see http://localhost:<NUM> and https://h.example"},
		{"Out of memory: Killed process 12345 (python3) total-vm:8123456kB, anon-rss:4096000kB",
			"Out of memory: Killed process <NUM> (python3) total-vm:<NUM>kB, anon-rss:<NUM>kB"},
		{"job 6f1c2a9e-3b4d-4c5e-9f00-112233445566 started 2026-12-01T10:00:00.123Z, retry at 2026-12-01 10:05:00+01:00 (10:00:01.5)",
			"job <UUID> started <TS>, retry at <TS> (<TS>)"},
		{"fatal: reference is not a tree: 3f2a9c1d8e", "fatal: reference is not a tree: <HEX>"},
		{"manifest for ghcr.io/acme/app@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 not found",
			"manifest for <PATH> not found"},
		{"digest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 at 0x7ffd5fbff8c0", "digest sha256:<HEX> at <HEX>"},
		{"v1.2.3 python3.7 12s 1m30s 4096MiB 0.25s E404 sha256 deadbeef", "v<NUM> python3.<NUM> <NUM>s <NUM>m<NUM>s <NUM>MiB <NUM>s E404 sha256 deadbeef"},
		{"App.java:[3,17] can't resolve", "App.java:[<NUM>,<NUM>] can't resolve"},
		{"x_test.go:12:34: got 1, want 2", "x_test.go:<NUM>:<NUM>: got <NUM>, want <NUM>"},
		{"read udp 127.0.0.1:51234->127.0.0.53:53: i/o timeout", "read udp <IP>:<NUM>-><IP>:<NUM>: i/o timeout"},
		{"C:\\Users\\runneradmin\\app\\main.go:3: undefined: x", "<PATH>: undefined: x"},
		{"  tabs\tand   spaces  ", "tabs and spaces"},
		{"nul\x00byte", "nul byte"},
	}
	for _, tt := range tests {
		got := signature.Mask(tt.in)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Mask(%q) (-want +got):\n%s", tt.in, diff)
		}
		if again := signature.Mask(got); again != got {
			t.Errorf("Mask is not idempotent on %q: %q", got, again)
		}
	}
}
