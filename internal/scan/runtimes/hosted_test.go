package runtimes_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// hostedImage is a hosted CI image's typical set of runtimes in one root
// filesystem: Debian 12 minbase with ca-certificates, curl and python3
// (Python 3.11, Perl), Debian's nodejs 18, ruby3.1 and php8.2-cli unpacked
// into it, and this machine's toolchains at their own paths (pyenv's
// CPython 3.12 and 3.13, Node.js 20 in a tool cache, OpenJDK 17 with its
// /etc configuration and Temurin 25, Go), with the libraries they link
// copied from this machine.
func hostedImage(tb testing.TB) string {
	tb.Helper()
	testenv.RequireRoot(tb)
	versions := testenv.PyenvDir() // $(pyenv root)/versions
	need := []string{versions + "/3.12.1", versions + "/3.13.0", "/usr/bin/node", "/usr/lib/node_modules/npm",
		jdk17, "/etc/java-17-openjdk", "/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/local/go"}
	for _, p := range need {
		testenv.Require(tb, fileExists(p), "the hosted image set needs %s", p)
	}
	root := filepath.Join(tb.TempDir(), "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		tb.Fatal(err)
	}
	mustRun(tb, "tar", "-C", root, "--numeric-owner", "--exclude=./dev/*", "-xf", testenv.DebianRootfs(tb, "bookworm", "ca-certificates", "curl", "python3"))
	for _, p := range debs(tb, "nodejs", "libnode108", "libuv1", "libc-ares2", "node-acorn", "node-cjs-module-lexer", "node-undici",
		"ruby3.1", "libruby3.1", "rubygems-integration", "libyaml-0-2",
		"php8.2-cli", "php8.2-common", "php8.2-opcache", "php8.2-readline", "php-common") {
		// The base is merged-/usr (/lib links to usr/lib); dpkg-deb -x
		// would replace the link with php's ./lib/systemd directory.
		mustRun(tb, "sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -x --keep-directory-symlink -C "$2"`, "sh", p, root)
	}
	// This machine's toolchains, hard-linked (read-only to the scan).
	link := func(src, dst string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, dst)), 0o755); err != nil {
			tb.Fatal(err)
		}
		mustRun(tb, "cp", "-al", src, filepath.Join(root, dst))
	}
	for _, v := range []string{"3.12.1", "3.13.0"} {
		link(versions+"/"+v, versions+"/"+v)
	}
	node20 := "/opt/hostedtoolcache/node/20/x64"
	link("/usr/bin/node", node20+"/bin/node")
	link("/usr/lib/node_modules", node20+"/lib/node_modules")
	link("/usr/include/node", node20+"/include/node")
	link(jdk17, jdk17)
	link("/etc/java-17-openjdk", "/etc/java-17-openjdk")
	link("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/temurin-25-jdk-amd64")
	link("/usr/local/go", "/usr/local/go")
	// The JDKs' trust stores link to what ca-certificates-java (and
	// Adoptium's package) generate under /etc/ssl/certs.
	for _, d := range []string{"/etc/ssl/certs/java", "/etc/ssl/certs/adoptium"} {
		if fileExists(d) {
			link(d, d)
		}
	}
	mustCopyLibraries(tb, root, "usr/bin/node", "usr/bin/ruby3.1", "usr/lib/x86_64-linux-gnu/ruby/3.1.0/*.so", "usr/bin/php8.2", "usr/lib/php/20220829/*.so",
		strings.TrimPrefix(versions, "/")+"/3.1*/bin/python3.1?", strings.TrimPrefix(versions, "/")+"/3.1*/lib/python3.1*/lib-dynload/*.so",
		strings.TrimPrefix(jdk17, "/")+"/lib/lib[jnz]*.so", strings.TrimPrefix(jdk17, "/")+"/lib/server/libjvm.so", "usr/lib/jvm/temurin-25-jdk-amd64/lib/lib[jnz]*.so")
	return root
}

// BenchmarkHostedImage scans the hosted image set with execution (chroot),
// the whole scan as `imagegate scan dir:` does it, and reports the time per
// scan and per runtime kind found:
//
//	go test -run '^$' -bench HostedImage -benchtime 3x ./internal/scan/runtimes/
func BenchmarkHostedImage(b *testing.B) {
	testenv.Require(b, sandbox.Permitted() == nil, "needs chroot execution: %v", sandbox.Permitted())
	root := hostedImage(b)
	kinds := map[string]int{}
	var (
		notOK, warnings []string
		exec            string
	)
	cpu := func() time.Duration {
		var self, children syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
		return time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
	}
	before := cpu()
	for b.Loop() {
		tree, err := source.Open(context.Background(), "dir:"+root, source.Options{})
		if err != nil {
			b.Fatal(err)
		}
		snap, err := scan.Scan(context.Background(), tree, scan.Options{Exec: scan.ExecChroot})
		tree.Close()
		if err != nil {
			b.Fatal(err)
		}
		clear(kinds)
		notOK = notOK[:0]
		for _, r := range snap.Runtimes {
			kinds[r.Kind]++
			for _, m := range r.Modules {
				if m.Status != snapshot.StatusOK {
					notOK = append(notOK, r.Kind+" "+r.Version+" "+m.Name+" "+m.Status)
				}
			}
		}
		exec, warnings = snap.Exec, snap.Warnings
	}
	b.Logf("exec %s; parts not ok: %q; warnings: %q", exec, notOK, warnings)
	var found []string
	for k, n := range kinds {
		found = append(found, k+"="+string(rune('0'+n)))
	}
	sort.Strings(found)
	b.Logf("runtimes: %s", strings.Join(found, " "))
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Second), "s/scan")
	// On a shared machine the wall time depends on the load; the CPU time
	// (this process and the runtimes it ran) does not.
	b.ReportMetric(float64(cpu()-before)/float64(b.N)/float64(time.Second), "cpu-s/scan")
}
