package signature_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/signature"
)

func TestExplore(t *testing.T) {
	for _, s := range []string{
		"ModuleNotFoundError: No module named '_sqlite3'",
		"ImportError: No module named _sqlite3",
		"ImportError: cannot import name 'soft_unicode' from 'markupsafe' (/opt/hostedtoolcache/Python/3.9.1/x64/lib/python3.9/site-packages/markupsafe/__init__.py)",
		`Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)`,
		"dial tcp 10.1.2.3:443: i/o timeout",
		"curl: (28) Failed to connect to example.com port 443 after 130021 ms: Timeout was reached",
		"Out of memory: Killed process 12345 (python3) total-vm:8123456kB, anon-rss:4096000kB, file-rss:0kB, shmem-rss:0kB",
		"--- FAIL: TestParse (0.03s)",
		"fatal: unable to access 'https://github.com/acme/api.git/': Could not resolve host: github.com",
		"fatal: reference is not a tree: 3f2a9c1d8e",
		"bash: line 1: poetry: command not found",
		"python3: error while loading shared libraries: libpython3.7m.so.1.0: cannot open shared object file: No such file or directory",
		"package log/slog is not in std (/opt/hostedtoolcache/go/1.20.14/x64/src/log/slog)",
		"job 6f1c2a9e-3b4d-4c5e-9f00-112233445566 started 2026-12-01T10:00:00.123Z at 10:00:01.5",
		"src/app.ts:12:5 - error TS2307: Cannot find module '@acme/ui' or its corresponding type declarations.",
		"Error: Cannot find module '/home/runner/work/app/app/dist/index.js'",
		"v1.2.3 python3.7 0x7ffd5fbff8c0 sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 12s 1m30s 4096MiB E404",
		"npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padx - Not found",
		"KeyError: 'user_id' can't find it",
		"/usr/bin/ld: cannot find -lsqlite3: No such file or directory",
	} {
		t.Logf("%s\n    -> %s", s, signature.Mask(s))
	}
}
