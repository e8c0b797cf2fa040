package signature_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/signature"
)

func TestTail(t *testing.T) {
	tests := []struct {
		name string
		text string
		max  int
		want string
	}{
		{"fits", "a\nb\n", 10, "a\nb\n"},
		{"cut at a line start", "first line\nsecond\nthird\n", 14, "second\nthird\n"},
		{"cut exactly after a newline", "aaaa\nbbbb\n", 5, "bbbb\n"},
		{"drop the partial line", "aaaa\nbbbb\ncc", 6, "cc"},
		{"last line too long keeps its end", "x\n0123456789", 4, "6789"},
		{"long line with trailing newline", "0123456789\n", 4, "789\n"},
		{"utf-8 boundary", "ééé", 3, "é"},
		{"zero", "abc", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := signature.Tail(tt.text, tt.max)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Tail(%q, %d) (-want +got):\n%s", tt.text, tt.max, diff)
			}
			if len(got) > tt.max && tt.max >= 0 {
				t.Errorf("Tail returned %d bytes, max %d", len(got), tt.max)
			}
		})
	}
}

// sqliteTraceback is the 2019 failure as GitHub Actions' raw log shows it.
const sqliteTraceback = "2026-12-01T10:00:00.1234567Z Run python -m app.migrate\n" +
	"2026-12-01T10:00:01.0000001Z Traceback (most recent call last):\n" +
	"2026-12-01T10:00:01.0000002Z   File \"/home/runner/work/app/app/migrate.py\", line 3, in <module>\n" +
	"2026-12-01T10:00:01.0000003Z     import sqlite3\n" +
	"2026-12-01T10:00:01.0000004Z   File \"/opt/hostedtoolcache/Python/3.7.17/x64/lib/python3.7/sqlite3/__init__.py\", line 23, in <module>\n" +
	"2026-12-01T10:00:01.0000005Z     from sqlite3.dbapi2 import *\n" +
	"2026-12-01T10:00:01.0000006Z   File \"/opt/hostedtoolcache/Python/3.7.17/x64/lib/python3.7/sqlite3/dbapi2.py\", line 27, in <module>\n" +
	"2026-12-01T10:00:01.0000007Z     from _sqlite3 import *\n" +
	"2026-12-01T10:00:01.0000008Z ModuleNotFoundError: No module named '_sqlite3'\n" +
	"2026-12-01T10:00:01.1000000Z ##[error]Process completed with exit code 1.\n"

const pytestCollection = `============================= test session starts ==============================
platform linux -- Python 3.7.17, pytest-7.4.4, pluggy-1.2.0
collected 0 items / 1 error

==================================== ERRORS ====================================
______________________ ERROR collecting tests/test_db.py _______________________
ImportError while importing test module '/home/runner/work/app/tests/test_db.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/opt/hostedtoolcache/Python/3.7.17/x64/lib/python3.7/importlib/__init__.py:127: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
tests/test_db.py:1: in <module>
    import sqlite3
/opt/hostedtoolcache/Python/3.7.17/x64/lib/python3.7/sqlite3/dbapi2.py:27: in <module>
    from _sqlite3 import *
E   ModuleNotFoundError: No module named '_sqlite3'
=========================== short test summary info ============================
ERROR tests/test_db.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
=============================== 1 error in 0.12s ===============================
Error: Process completed with exit code 2.
`

const pytestFailed = `tests/test_api.py::test_get_user[admin-1] FAILED                         [ 50%]
tests/test_api.py::test_list PASSED                                      [100%]
=================================== FAILURES ===================================
___________________________ test_get_user[admin-1] ____________________________
E       AssertionError: assert 404 == 200
=========================== short test summary info ============================
FAILED tests/test_api.py::test_get_user[admin-1] - AssertionError: assert 404 == 200
========================= 1 failed, 1 passed in 0.31s ==========================
`

const npm404 = `npm ERR! code E404
npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padx - Not found
npm ERR! 404
npm ERR! 404  'left-padx@*' is not in this registry.
npm ERR! 404
npm ERR! 404 Note that you can also install from a
npm ERR! 404 tarball, folder, http url, or git url.

npm ERR! A complete log of this run can be found in:
npm ERR!     /home/runner/.npm/_logs/2026-12-01T10_00_00_123Z-debug-0.log
Error: Process completed with exit code 1.
`

const npmLifecycle = `> app@1.0.0 build
> node build.js

node:internal/modules/cjs/loader:1080
  throw err;
  ^

Error: Cannot find module 'esbuild'
Require stack:
- /home/runner/work/app/app/build.js
npm ERR! code 1
npm ERR! path /home/runner/work/app/app
npm ERR! command failed
npm ERR! command sh -c node build.js

npm ERR! A complete log of this run can be found in: /home/runner/.npm/_logs/2026-12-01T10_00_00_000Z-debug-0.log
`

const mavenDeps = `[INFO] BUILD FAILURE
[INFO] ------------------------------------------------------------------------
[INFO] Total time:  3.456 s
[ERROR] Failed to execute goal on project app: Could not resolve dependencies for project com.acme:app:jar:1.0-SNAPSHOT: Could not find artifact com.acme:lib:jar:2.3.1 in central (https://repo.maven.apache.org/maven2) -> [Help 1]
[ERROR] 
[ERROR] To see the full stack trace of the errors, re-run Maven with the -e switch.
[ERROR] Re-run Maven using the -X switch to enable full debug logging.
[ERROR] 
[ERROR] For more information about the errors and possible solutions, please read the following articles:
[ERROR] [Help 1] http://cwiki.apache.org/confluence/display/MAVEN/DependencyResolutionException
Error: Process completed with exit code 1.
`

const gradle = `> Task :app:compileJava FAILED

FAILURE: Build failed with an exception.

* What went wrong:
Execution failed for task ':app:compileJava'.
> Could not resolve all files for configuration ':app:compileClasspath'.
   > Could not find com.acme:lib:2.3.1.
     Required by:
         project :app

* Try:
> Run with --stacktrace option to get the stack trace.
> Get more help at https://help.gradle.org.

BUILD FAILED in 12s
`

const gradleCompile = `> Task :app:compileJava
/home/runner/work/app/app/src/main/java/App.java:3: error: package org.acme.util does not exist
import org.acme.util.Strings;
                    ^
1 error

> Task :app:compileJava FAILED

FAILURE: Build failed with an exception.

* What went wrong:
Execution failed for task ':app:compileJava'.
> Compilation failed; see the compiler error output for details.

BUILD FAILED in 4s
`

const goTest = `=== RUN   TestParse
    parse_test.go:41: Parse("a=1") = 2, want 1
--- FAIL: TestParse (0.00s)
FAIL
FAIL	github.com/acme/api/parse	0.012s
FAIL
Error: Process completed with exit code 1.
`

const javaCause = `Exception in thread "main" java.lang.NoClassDefFoundError: org/sqlite/JDBC
	at com.acme.Main.main(Main.java:12)
Caused by: java.lang.ClassNotFoundException: org.sqlite.JDBC
	at java.base/jdk.internal.loader.BuiltinClassLoader.loadClass(BuiltinClassLoader.java:641)
	... 1 more
`

const ansi = "\x1b[31;1mError: \x1b[0mThe process '/usr/bin/git' failed with exit code 128\n" +
	"\x1b[36;1mfatal: could not read Username for 'https://github.com': terminal prompts disabled\x1b[0m\n" +
	"\x1b[1;31mError: Process completed with exit code 128.\x1b[0m\n"

func TestExtract(t *testing.T) {
	tests := []struct {
		name string
		log  string
		want string
	}{
		{"python traceback under runner timestamps", sqliteTraceback, "ModuleNotFoundError: No module named '_sqlite3'"},
		{"pytest collection error", pytestCollection, "ModuleNotFoundError: No module named '_sqlite3'"},
		{"pytest FAILED keeps the reason", pytestFailed, "AssertionError: assert 404 == 200"},
		{"pytest -v progress line is a summary", "E   KeyError: 'id'\n[gw1] [ 50%] FAILED tests/test_api.py::test_list\ntests/test_api.py::test_get PASSED [ 75%]\ntests/test_api.py::test_put FAILED [100%]\n", "KeyError: 'id'"},
		{"python 2 ImportError", "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n    import sqlite3\nImportError: No module named _sqlite3\n", "ImportError: No module named _sqlite3"},
		{"exception not named Error", "Traceback (most recent call last):\n  File \"manage.py\", line 9, in <module>\ndjango.core.exceptions.ImproperlyConfigured: SECRET_KEY must not be empty\n", "django.core.exceptions.ImproperlyConfigured: SECRET_KEY must not be empty"},
		{"npm 404: the cause, not the log path", npm404, "npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padx - Not found"},
		{"npm lifecycle: the script's own error", npmLifecycle, "Error: Cannot find module 'esbuild'"},
		{"maven: the goal, not the help", mavenDeps, "[ERROR] Failed to execute goal on project app: Could not resolve dependencies for project com.acme:app:jar:1.0-SNAPSHOT: Could not find artifact com.acme:lib:jar:2.3.1 in central (https://repo.maven.apache.org/maven2) -> [Help 1]"},
		{"gradle: what went wrong", gradle, "Could not find com.acme:lib:2.3.1."},
		{"gradle compile: the compiler's line", gradleCompile, "/home/runner/work/app/app/src/main/java/App.java:3: error: package org.acme.util does not exist"},
		{"go test: the failing test", goTest, "--- FAIL: TestParse (0.00s)"},
		{"java: the root cause", javaCause, "java.lang.ClassNotFoundException: org.sqlite.JDBC"},
		{"java: thread prefix dropped", "Exception in thread \"main\" java.lang.UnsatisfiedLinkError: no sqlitejdbc in java.library.path\n", "java.lang.UnsatisfiedLinkError: no sqlitejdbc in java.library.path"},
		{"git fatal under ANSI colours", ansi, "fatal: could not read Username for 'https://github.com': terminal prompts disabled"},
		{"docker pull timeout", "Pulling image python:3.7\nError response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp 54.236.113.205:443: i/o timeout\nError: Process completed with exit code 1.\n", "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp 54.236.113.205:443: i/o timeout"},
		{"OOM kill", "Epoch 3/10\n/home/runner/work/_temp/1a2b.sh: line 1:  2841 Killed                  python train.py\nError: Process completed with exit code 137.\n", "/home/runner/work/_temp/1a2b.sh: line 1:  2841 Killed                  python train.py"},
		{"curl", "  % Total    % Received\ncurl: (6) Could not resolve host: downloads.example.com\n", "curl: (6) Could not resolve host: downloads.example.com"},
		{"rust", "   Compiling app v0.1.0\nerror[E0432]: unresolved import `serde_json`\n --> src/main.rs:1:5\nerror: could not compile `app` (bin \"app\") due to 1 previous error\n", "error[E0432]: unresolved import `serde_json`"},
		{"command not found", "Run poetry install\n/home/runner/work/_temp/9c1e.sh: line 1: poetry: command not found\nError: Process completed with exit code 127.\n", "/home/runner/work/_temp/9c1e.sh: line 1: poetry: command not found"},
		{"docker build: pip's error, not buildx's exit code", "#8 2.301 ERROR: Could not find a version that satisfies the requirement torch==9.9 (from versions: none)\nERROR: failed to solve: process \"/bin/sh -c pip install -r requirements.txt\" did not complete successfully: exit code: 1\n", "#8 2.301 ERROR: Could not find a version that satisfies the requirement torch==9.9 (from versions: none)"},
		{"exit code is the fallback", "Running tests...\nall good until here\nError: Process completed with exit code 3.\n", "Error: Process completed with exit code 3."},
		{"exited with code", "container app exited with code 137\n\n", "container app exited with code 137"},
		{"last non-empty line", "step 1\nstep 2 went sideways\n\n  \n", "step 2 went sideways"},
		{"progress bar carriage returns", "Downloading 10%\rDownloading 100%\rfatal: early EOF\n", "fatal: early EOF"},
		{"nothing", "\n \n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, signature.Extract(tt.log)); diff != "" {
				t.Errorf("Extract (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractBounds(t *testing.T) {
	// An early error line beyond the kept 8 KiB is not seen.
	log := "fatal: the early one\n" + strings.Repeat("progress line\n", 1000) + "Error: the late one\n"
	if got := signature.Extract(log); got != "Error: the late one" {
		t.Errorf("Extract = %q", got)
	}
	log = "fatal: only this\n" + strings.Repeat("x", signature.MaxErrorText)
	if got := signature.Extract(log); strings.Contains(got, "fatal") {
		t.Errorf("Extract read beyond MaxErrorText: %q", got)
	}
	long := "Error: " + strings.Repeat("é", signature.MaxMessage)
	got := signature.Extract(long)
	if len(got) > signature.MaxMessage || !utf8.ValidString(got) {
		t.Errorf("Extract returned %d bytes (valid UTF-8: %v), max %d", len(got), utf8.ValidString(got), signature.MaxMessage)
	}
}
