package simulate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// The error texts are what runners send: the tail of the failed step's
// log. They are written after real ones (GitHub-hosted runner logs,
// CPython tracebacks, npm, pytest, go test, the JVM, docker), with the
// variable parts (hosts, ports, sizes, durations, line numbers, paths) drawn
// for every job, so that a signature miner has to earn its templates.

// feature is something a pipeline uses that an image can break, with the
// text a job that uses it fails with on the broken version.
type feature struct {
	// text is the log tail of a job of pipeline repo on a Python minor
	// (0 when the pipeline has none); drift varies the text the way
	// Python versions do (text-drift).
	text func(r *rand.Rand, repo string, py int, drift bool) string
}

var pythons = []int{27, 36, 37, 38, 39, 310, 311, 312}

func pyDir(py int) (major, dotted, full string) {
	s := strconv.Itoa(py)
	major, minor := s[:1], s[1:]
	dotted = major + "." + minor
	return major, dotted, dotted + "." + strconv.Itoa(py%7+1)
}

var features = map[string]feature{
	"sqlite3": {text: func(r *rand.Rand, repo string, py int, drift bool) string {
		if !drift {
			py = 37
		}
		_, dotted, full := pyDir(py)
		exc, mod := "ModuleNotFoundError", "'_sqlite3'"
		if py < 36 {
			exc, mod = "ImportError", "_sqlite3"
		}
		if drift && py >= 36 && r.IntN(4) == 0 {
			// Some tools re-raise the import failure as its base class.
			exc = "ImportError"
		}
		return fmt.Sprintf(`Run python -m pytest tests/
Traceback (most recent call last):
  File "/home/runner/work/%[1]s/%[1]s/tests/conftest.py", line %[2]d, in <module>
    import sqlite3
  File "/opt/hostedtoolcache/Python/%[3]s/x64/lib/python%[4]s/sqlite3/__init__.py", line %[5]d, in <module>
    from sqlite3.dbapi2 import *
  File "/opt/hostedtoolcache/Python/%[3]s/x64/lib/python%[4]s/sqlite3/dbapi2.py", line 27, in <module>
    from _sqlite3 import *
%[6]s: No module named %[7]s
Error: Process completed with exit code 1.`, repo, 3+r.IntN(40), full, dotted, 23+py%5, exc, mod)
	}},
	"docker": {text: func(r *rand.Rand, repo string, _ int, _ bool) string {
		return fmt.Sprintf(`Run docker build -t %s:%x .
docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?.
See 'docker run --help'.
Error: Process completed with exit code 125.`, repo, r.Uint32())
	}},
	"node18": {text: func(r *rand.Rand, repo string, _ int, _ bool) string {
		return fmt.Sprintf(`Run npm ci
/opt/hostedtoolcache/node/18.%d.0/x64/bin/node: /lib/x86_64-linux-gnu/libc.so.6: version `+"`GLIBC_2.28'"+` not found (required by /opt/hostedtoolcache/node/18.%d.0/x64/bin/node)
Error: Process completed with exit code 1.`, 12+r.IntN(8), 12+r.IntN(8))
	}},
	"java": {text: func(r *rand.Rand, repo string, _ int, _ bool) string {
		return fmt.Sprintf(`Run ./gradlew build --no-daemon
ERROR: JAVA_HOME is set to an invalid directory: /usr/lib/jvm/temurin-17-jdk-amd64

Please set the JAVA_HOME variable in your environment to match the
location of your Java installation.
Error: Process completed with exit code %d.`, 1)
	}},
	"openssl": {text: func(r *rand.Rand, repo string, py int, _ bool) string {
		_, dotted, full := pyDir(max(py, 36))
		return fmt.Sprintf(`Traceback (most recent call last):
  File "/home/runner/work/%[1]s/%[1]s/scripts/fetch.py", line %[2]d, in <module>
    import ssl
  File "/opt/hostedtoolcache/Python/%[3]s/x64/lib/python%[4]s/ssl.py", line 98, in <module>
    import _ssl             # if we can't import it, let the error propagate
ImportError: libssl.so.1.1: cannot open shared object file: No such file or directory
Error: Process completed with exit code 1.`, repo, 3+r.IntN(60), full, dotted)
	}},
}

func featureNames() []string {
	var out []string
	for k := range features {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// signature is one background failure's template: fixed parts chosen when
// the catalog is built, variable parts drawn per job.
type signature struct {
	text func(r *rand.Rand, repo string) string
}

var (
	hosts      = []string{"registry.npmjs.org", "pypi.org", "files.pythonhosted.org", "repo.maven.apache.org", "proxy.golang.org", "github.com", "objects.githubusercontent.com", "ghcr.io", "registry-1.docker.io", "api.nuget.org", "rubygems.org", "dl-cdn.alpinelinux.org", "archive.ubuntu.com", "azure.archive.ubuntu.com", "storage.googleapis.com", "s3.amazonaws.com"}
	userPkgs   = []string{"requests", "numpy", "pandas", "yaml", "boto3", "django", "flask", "pytest_mock", "attr", "dateutil", "jwt", "psycopg2", "redis", "celery", "pydantic", "httpx", "lxml", "PIL", "cv2", "sklearn", "torch", "tensorflow", "matplotlib", "scipy", "sqlalchemy", "click", "rich", "tqdm", "jinja2", "toml", "grpc", "google.protobuf", "azure.storage", "kubernetes", "docker", "paramiko", "cryptography", "nacl", "bcrypt", "orjson", "ujson", "msgpack", "zmq", "serial", "usb", "mypy_extensions", "typing_extensions", "importlib_metadata", "setuptools_scm", "myproject.utils", "app.settings", "internal_lib", "company_sdk", "shared.models", "core.config"}
	testVerbs  = []string{"upload", "download", "login", "logout", "retry", "parse", "render", "migrate", "sync", "export", "import", "resize", "schedule", "notify", "checkout", "refund", "search", "index", "cache", "stream"}
	testNouns  = []string{"large_file", "empty_body", "unicode_name", "timeout", "concurrent_writes", "expired_token", "missing_header", "big_batch", "slow_network", "partial_read", "dst_change", "leap_year", "null_value", "nested_json", "utf16", "redirect", "rate_limit", "cold_cache"}
	goPkgs     = []string{"internal/api", "internal/store", "pkg/client", "cmd/server", "internal/auth", "pkg/queue", "internal/render", "pkg/retry"}
	oomTargets = []string{"cc1plus", "rustc", "java", "node", "ld", "go", "webpack", "tsc"}
	exitCodes  = []int{1, 2, 127, 137, 143, 255}
)

// signatureFamilies build one catalog entry each from fixed choices.
var signatureFamilies = []func(r *rand.Rand) signature{
	func(r *rand.Rand) signature { // network timeout with host and port
		host := hosts[r.IntN(len(hosts))]
		return signature{text: func(r *rand.Rand, _ string) string {
			return fmt.Sprintf("curl: (28) Failed to connect to %s port %d after %d ms: Connection timed out\nError: Process completed with exit code 28.", host, []int{443, 80, 8443}[r.IntN(3)], 130000+r.IntN(9000))
		}}
	},
	func(r *rand.Rand) signature { // npm network error
		host := hosts[r.IntN(len(hosts))]
		code := []string{"ETIMEDOUT", "ECONNRESET", "EAI_AGAIN", "ENOTFOUND"}[r.IntN(4)]
		return signature{text: func(r *rand.Rand, repo string) string {
			return fmt.Sprintf("npm ERR! code %s\nnpm ERR! errno %s\nnpm ERR! network request to https://%s/%s/-/%s-%d.%d.%d.tgz failed, reason: connect %s %d.%d.%d.%d:443\nnpm ERR! A complete log of this run can be found in: /home/runner/.npm/_logs/2026-%02d-%02dT%02d_%02d_%02d_%03dZ-debug-0.log\nError: Process completed with exit code 1.",
				code, code, host, repo, repo, r.IntN(9), r.IntN(30), r.IntN(20), code, 104+r.IntN(50), r.IntN(256), r.IntN(256), r.IntN(256), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000))
		}}
	},
	func(r *rand.Rand) signature { // a user dependency missing: the sqlite3 template with another name
		pkg := userPkgs[r.IntN(len(userPkgs))]
		return signature{text: func(r *rand.Rand, repo string) string {
			py := pythons[1+r.IntN(len(pythons)-1)]
			_, dotted, full := pyDir(py)
			return fmt.Sprintf("Traceback (most recent call last):\n  File \"/home/runner/work/%[1]s/%[1]s/src/main.py\", line %[2]d, in <module>\n    import %[3]s\n  File \"/opt/hostedtoolcache/Python/%[4]s/x64/lib/python%[5]s/site-packages/%[1]s/__init__.py\", line %[6]d, in <module>\nModuleNotFoundError: No module named '%[3]s'\nError: Process completed with exit code 1.",
				repo, 1+r.IntN(80), pkg, full, dotted, 1+r.IntN(30))
		}}
	},
	func(r *rand.Rand) signature { // a flaky pytest test
		name := "test_" + testVerbs[r.IntN(len(testVerbs))] + "_" + testNouns[r.IntN(len(testNouns))]
		file := "tests/test_" + testVerbs[r.IntN(len(testVerbs))] + ".py"
		return signature{text: func(r *rand.Rand, _ string) string {
			return fmt.Sprintf("FAILED %s::%s - AssertionError: assert %d == %d\n========== 1 failed, %d passed, %d skipped in %d.%02ds ==========\nError: Process completed with exit code 1.",
				file, name, r.IntN(500), r.IntN(500), 50+r.IntN(900), r.IntN(20), 5+r.IntN(300), r.IntN(100))
		}}
	},
	func(r *rand.Rand) signature { // a flaky go test
		test := "Test" + strings.ToUpper(testVerbs[r.IntN(len(testVerbs))][:1]) + testVerbs[r.IntN(len(testVerbs))][1:] + "Concurrent"
		pkg := goPkgs[r.IntN(len(goPkgs))]
		return signature{text: func(r *rand.Rand, repo string) string {
			return fmt.Sprintf("--- FAIL: %s (%d.%02ds)\n    handler_test.go:%d: got status %d, want 200\nFAIL\ngithub.com/%s/%s\t%d.%03ds\nFAIL\nError: Process completed with exit code 1.",
				test, r.IntN(30), r.IntN(100), 20+r.IntN(400), []int{500, 502, 503, 504}[r.IntN(4)], repo, pkg, r.IntN(60), r.IntN(1000))
		}}
	},
	func(r *rand.Rand) signature { // out of memory with sizes
		target := oomTargets[r.IntN(len(oomTargets))]
		return signature{text: func(r *rand.Rand, _ string) string {
			switch target {
			case "node", "webpack", "tsc":
				return fmt.Sprintf("<--- Last few GCs --->\n[%d:0x%x]    %d ms: Mark-Compact %d.%d (%d.%d) -> %d.%d (%d.%d) MB, %d.%d / 0.0 ms  (average mu = 0.%03d, current mu = 0.%03d) allocation failure\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\nError: Process completed with exit code 134.",
					1000+r.IntN(9000), r.Uint64()>>16, 10000+r.IntN(90000), 2000+r.IntN(2000), r.IntN(10), 2000+r.IntN(2000), r.IntN(10), 2000+r.IntN(2000), r.IntN(10), 2000+r.IntN(2000), r.IntN(10), 100+r.IntN(3000), r.IntN(10), r.IntN(1000), r.IntN(1000))
			case "java":
				return fmt.Sprintf("Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n\tat java.base/java.util.Arrays.copyOf(Arrays.java:%d)\n\tat java.base/java.util.ArrayList.grow(ArrayList.java:%d)\nError: Process completed with exit code 1.", 3000+r.IntN(600), 200+r.IntN(100))
			}
			return fmt.Sprintf("%s: fatal error: Killed signal terminated program %s\ncompilation terminated.\nmake[%d]: *** [Makefile:%d: build/%x.o] Error 1\nThe runner has received a shutdown signal. Memory used: %d MB of %d MB.\nError: Process completed with exit code 2.",
				target, target, 1+r.IntN(3), 100+r.IntN(900), r.Uint32(), 6800+r.IntN(400), 7000)
		}}
	},
	func(r *rand.Rand) signature { // git cannot reach the remote
		host := hosts[r.IntN(len(hosts))]
		return signature{text: func(r *rand.Rand, repo string) string {
			return fmt.Sprintf("fatal: unable to access 'https://%s/%s.git/': Could not resolve host: %s\nThe process '/usr/bin/git' failed with exit code 128\nWaiting %d seconds before trying again", host, repo, host, 1+r.IntN(20))
		}}
	},
	func(r *rand.Rand) signature { // docker pull timeout
		host := hosts[r.IntN(len(hosts))]
		return signature{text: func(r *rand.Rand, repo string) string {
			return fmt.Sprintf("Error response from daemon: Get \"https://%s/v2/%s/manifests/sha256:%016x%016x\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)\nError: Process completed with exit code 1.", host, repo, r.Uint64(), r.Uint64())
		}}
	},
	func(r *rand.Rand) signature { // a compile error in the customer's code
		ident := testNouns[r.IntN(len(testNouns))]
		return signature{text: func(r *rand.Rand, _ string) string {
			return fmt.Sprintf("src/%s.c:%d:%d: error: '%s' undeclared (first use in this function)\nmake: *** [Makefile:%d: all] Error 1\nError: Process completed with exit code 2.", ident, 10+r.IntN(2000), 1+r.IntN(80), ident, 10+r.IntN(100))
		}}
	},
	func(r *rand.Rand) signature { // maven test failures
		return signature{text: func(r *rand.Rand, repo string) string {
			return fmt.Sprintf("[ERROR] Tests run: %d, Failures: %d, Errors: 0, Skipped: %d\n[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.%d.0:test (default-test) on project %s: There are test failures.\nError: Process completed with exit code 1.", 100+r.IntN(2000), 1+r.IntN(5), r.IntN(30), r.IntN(3), repo)
		}}
	},
	func(r *rand.Rand) signature { // API rate limit
		return signature{text: func(r *rand.Rand, _ string) string {
			return fmt.Sprintf("Error: API rate limit exceeded for installation ID %d. (But here's the good news: Authenticated requests get a higher rate limit.)\nError: Process completed with exit code 1.", 10000000+r.IntN(90000000))
		}}
	},
	func(r *rand.Rand) signature { // a lint error
		rule := []string{"no-unused-vars", "no-undef", "eqeqeq", "prefer-const", "@typescript-eslint/no-explicit-any"}[r.IntN(5)]
		return signature{text: func(r *rand.Rand, _ string) string {
			n := 1 + r.IntN(20)
			return fmt.Sprintf("/home/runner/work/app/app/src/%s.ts\n  %d:%d  error  '%s' is defined but never used  %s\n\n✖ %d problems (%d errors, 0 warnings)\nError: Process completed with exit code 1.", testVerbs[r.IntN(len(testVerbs))], 1+r.IntN(300), 1+r.IntN(80), testNouns[r.IntN(len(testNouns))], rule, n, n)
		}}
	},
	func(r *rand.Rand) signature { // only an exit code
		code := exitCodes[r.IntN(len(exitCodes))]
		return signature{text: func(r *rand.Rand, _ string) string {
			return fmt.Sprintf("Error: Process completed with exit code %d.", code)
		}}
	},
}

// privateText is the log tail of a pipeline's own flaky test, one of a
// few per pipeline (k).
func privateText(r *rand.Rand, repo string, pipe, k int) string {
	return fmt.Sprintf("FAILED tests/integration/test_%s_%d.py::test_%s_%s - TimeoutError: timed out after %d.%ds\n========== 1 failed, %d passed in %d.%02ds ==========\nError: Process completed with exit code 1.",
		strings.ReplaceAll(repo, "/", "_"), pipe%97, testVerbs[(pipe+k)%len(testVerbs)], testNouns[(pipe*7+k)%len(testNouns)], 5+r.IntN(60), r.IntN(10), 20+r.IntN(400), 30+r.IntN(500), r.IntN(100))
}

// outageText is a registry outage's log tail: the same for both versions.
func outageText(r *rand.Rand, repo string) string {
	return fmt.Sprintf("Error response from daemon: Head \"https://ghcr.io/v2/%s/manifests/latest\": received unexpected HTTP status: 503 Service Unavailable\nWarning: Docker pull failed with exit code 1, back off %d.%03d seconds before retry.\nError: Docker pull failed with exit code 1", repo, r.IntN(10), r.IntN(1000))
}

// stormText is the retried job's failure in retry-storm.
func stormText(r *rand.Rand, repo string) string {
	return fmt.Sprintf("FAILED tests/e2e/test_checkout.py::test_checkout_with_saved_card - selenium.common.exceptions.TimeoutException: Message: timeout after %ds waiting for #pay-button\n========== 1 failed, %d passed in %d.%02ds ==========\nError: Process completed with exit code 1.",
		10+r.IntN(50), 100+r.IntN(20), 200+r.IntN(100), r.IntN(100))
}
