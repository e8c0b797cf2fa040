package runtimes_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

const jdk17 = "/usr/lib/jvm/java-17-openjdk-amd64"

var fixtures struct {
	once sync.Once
	dir  string
	err  error
	// cleanup are more fixture directories shared by the tests of this
	// binary, removed at its end.
	cleanup []string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
	for _, d := range fixtures.cleanup {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// javaFixtures builds, once per test binary, real Java runtimes from this
// machine's JDK 17 with jlink, each in a tool folder of its own:
//
//	linked/rt    java.base, java.net.http, jdk.crypto.ec: what a trimmed
//	             image that still does TLS looks like
//	no-ec/rt     the same without jdk.crypto.ec (EC keys and ECDHE fail)
//	no-certs/rt  linked, with lib/security/cacerts an empty JKS made by
//	             keytool (ca-certificates-java did not run)
func javaFixtures(tb testing.TB) string {
	tb.Helper()
	testenv.Require(tb, fileExists(jdk17+"/bin/jlink") && fileExists(jdk17+"/jmods/java.base.jmod"), "needs OpenJDK 17 with jmods at %s", jdk17)
	fixtures.once.Do(func() {
		fixtures.dir, fixtures.err = os.MkdirTemp("", "imagegate-java-")
		if fixtures.err != nil {
			return
		}
		run := func(name string, args ...string) {
			if fixtures.err != nil {
				return
			}
			if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
				fixtures.err = &fixtureError{cmd: name + " " + strings.Join(args, " "), out: string(out), err: err}
			}
		}
		d := fixtures.dir
		for _, f := range []string{"linked", "no-ec", "no-certs"} {
			run("mkdir", "-p", filepath.Join(d, f))
		}
		run(jdk17+"/bin/jlink", "--add-modules", "java.base,java.net.http,jdk.crypto.ec", "--output", filepath.Join(d, "linked", "rt"))
		run(jdk17+"/bin/jlink", "--add-modules", "java.base,java.net.http", "--output", filepath.Join(d, "no-ec", "rt"))
		run("cp", "-al", filepath.Join(d, "linked", "rt"), filepath.Join(d, "no-certs", "rt"))
		store := filepath.Join(d, "no-certs", "rt", "lib", "security", "cacerts")
		run("rm", store)
		run(jdk17+"/bin/keytool", "-genkeypair", "-alias", "x", "-keyalg", "RSA", "-dname", "CN=x", "-keystore", store, "-storetype", "JKS", "-storepass", "changeit")
		run(jdk17+"/bin/keytool", "-delete", "-alias", "x", "-keystore", store, "-storetype", "JKS", "-storepass", "changeit")
	})
	if fixtures.err != nil {
		tb.Fatalf("build Java fixtures: %v", fixtures.err)
	}
	return fixtures.dir
}

type fixtureError struct {
	cmd, out string
	err      error
}

func (e *fixtureError) Error() string { return e.cmd + ": " + e.err.Error() + "\n" + e.out }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// collect scans the tool folder root as the scan would, with execution or
// without.
func collect(tb testing.TB, root string, execute bool) ([]snapshot.Runtime, []string) {
	tb.Helper()
	tg := &source.Tree{Dir: root}
	if execute {
		tg.Runner = sandbox.NewLocal(root)
	}
	f := runtimes.NewFinder(runtimes.Options{})
	mustWalk(tb, tg, f, "/")
	rs, warnings, err := f.Collect(context.Background(), tg)
	if err != nil {
		tb.Fatal(err)
	}
	return rs, warnings
}

// statuses is "name status" per part, with the error for those not ok.
func statuses(r snapshot.Runtime) map[string]string {
	out := map[string]string{}
	for _, m := range r.Modules {
		out[m.Name] = m.Status
	}
	return out
}

func module(tb testing.TB, r snapshot.Runtime, name string) snapshot.Module {
	tb.Helper()
	for _, m := range r.Modules {
		if m.Name == name {
			return m
		}
	}
	tb.Fatalf("%s %s at %s: no part %q in %v", r.Kind, r.Version, r.Path, name, statuses(r))
	return snapshot.Module{}
}

func onlyRuntime(tb testing.TB, rs []snapshot.Runtime, kind string) snapshot.Runtime {
	tb.Helper()
	var found []snapshot.Runtime
	for _, r := range rs {
		if r.Kind == kind {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("want one %s runtime, got %v", kind, summary(rs))
	}
	return found[0]
}

func modes() []struct {
	name    string
	execute bool
} {
	return []struct {
		name    string
		execute bool
	}{{"files", false}, {"executed", true}}
}

// TestJavaRegressions makes each regression for real and expects the
// right part, and only it, to fail, with the files' evidence without
// execution and the JVM's own words with it.
func TestJavaRegressions(t *testing.T) {
	d := javaFixtures(t)
	ok := map[string]string{"cacerts": "ok", "java.base": "ok", "java.net.http": "ok", "jdk.crypto.ec": "ok"}
	tests := []struct {
		fixture   string
		part      string
		status    string
		fileError string // substring, without execution
		execError string // exactly, with execution
	}{
		{fixture: "linked"},
		{fixture: "no-ec", part: "jdk.crypto.ec", status: snapshot.StatusMissing,
			fileError: "java.lang.module.FindException: Module jdk.crypto.ec not found",
			execError: "java.security.NoSuchAlgorithmException: EC KeyPairGenerator not available"},
		{fixture: "no-certs", part: "cacerts", status: snapshot.StatusBroken,
			fileError: "a JKS key store with no trusted certificates",
			execError: "java.security.InvalidAlgorithmParameterException: the trustAnchors parameter must be non-empty"},
	}
	for _, tc := range tests {
		for _, mode := range modes() {
			t.Run(tc.fixture+"/"+mode.name, func(t *testing.T) {
				rs, warnings := collect(t, filepath.Join(d, tc.fixture), mode.execute)
				if len(warnings) > 0 {
					t.Errorf("warnings: %q", warnings)
				}
				r := onlyRuntime(t, rs, runtimes.KindJava)
				want := map[string]string{}
				for k, v := range ok {
					want[k] = v
				}
				if tc.part != "" {
					want[tc.part] = tc.status
				}
				if diff := cmp.Diff(want, statuses(r)); diff != "" {
					t.Errorf("part statuses (-want +got):\n%s", diff)
				}
				if tc.part == "" {
					return
				}
				m := module(t, r, tc.part)
				if mode.execute && m.Error != tc.execError {
					t.Errorf("%s error = %q, want the JVM's %q", tc.part, m.Error, tc.execError)
				}
				if !mode.execute && !strings.Contains(m.Error, tc.fileError) {
					t.Errorf("%s error = %q, want it to say %q", tc.part, m.Error, tc.fileError)
				}
			})
		}
	}
}

// TestJavaJDKs checks this machine's full JDKs: every module of the
// generated list for its feature version, the trust store, javac and jar
// ok, statically and when run.
func TestJavaJDKs(t *testing.T) {
	homes, _ := filepath.Glob("/usr/lib/jvm/*/bin/javac")
	testenv.Require(t, len(homes) > 0, "needs a JDK in /usr/lib/jvm")
	for _, mode := range modes() {
		t.Run(mode.name, func(t *testing.T) {
			rs, warnings := collect(t, "/usr/lib/jvm", mode.execute)
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
			jdks := 0
			for _, r := range rs {
				if r.Kind != runtimes.KindJava {
					continue
				}
				jdks++
				feature := strings.SplitN(r.Version, ".", 2)[0]
				want, known := runtimes.ExpectedParts("java", feature)
				if !known {
					t.Errorf("no generated module list for JDK %s: run scripts/gen-runtime-lists", feature)
				}
				got := statuses(r)
				for _, name := range append(want, "cacerts", "javac", "jar") {
					if got[name] != snapshot.StatusOK {
						t.Errorf("java %s at %s: %s is %q, want ok (%+v)", r.Version, r.Path, name, got[name], module(t, r, name))
					}
				}
			}
			if jdks == 0 {
				t.Fatalf("no JDK found in /usr/lib/jvm: %v", summary(rs))
			}
		})
	}
}
