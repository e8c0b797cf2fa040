package runtimes_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/testenv"
)

// goFixture is this machine's GOROOT copied (hard links) into a tool folder
// of its own, with the standard package fmt deleted when strip is set.
func goFixture(tb testing.TB, strip bool) string {
	tb.Helper()
	testenv.Require(tb, fileExists("/usr/local/go/bin/go"), "needs Go in /usr/local/go")
	root := tb.TempDir()
	mustRun(tb, "cp", "-al", "/usr/local/go", filepath.Join(root, "go"))
	if strip {
		if err := os.RemoveAll(filepath.Join(root, "go", "src", "fmt")); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

func TestGoParts(t *testing.T) {
	for _, strip := range []bool{false, true} {
		for _, mode := range modes() {
			t.Run(map[bool]string{false: "untouched", true: "without src/fmt"}[strip]+"/"+mode.name, func(t *testing.T) {
				rs, warnings := collect(t, goFixture(t, strip), mode.execute)
				if len(warnings) > 0 {
					t.Errorf("warnings: %q", warnings)
				}
				r := onlyRuntime(t, rs, runtimes.KindGo)
				want, known := runtimes.ExpectedParts("go", "1.26")
				if !known || len(r.Modules) != len(want)+1 {
					t.Errorf("%d parts, want the %d of the generated list and cgo", len(r.Modules), len(want))
				}
				var bad []string
				for _, m := range r.Modules {
					if m.Status != snapshot.StatusOK {
						bad = append(bad, m.Name+" "+m.Status+": "+m.Error)
					}
				}
				var wantBad []string
				if strip {
					wantBad = []string{"fmt missing: package fmt is not in std (/go/src/fmt)"}
					if mode.execute {
						// go list's own words, with the GOROOT it ran in.
						wantBad = []string{"fmt missing: " + module(t, r, "fmt").Error}
						if m := module(t, r, "fmt"); !regexpMatch(`^package fmt is not in std \(.*/go/src/fmt\)$`, m.Error) {
							t.Errorf("fmt error %q: want go list's", m.Error)
						}
					}
				}
				if diff := cmp.Diff(wantBad, bad); diff != "" {
					t.Errorf("parts not ok (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestGoGate(t *testing.T) {
	mustGate(t, regression{name: "GOROOT/src/fmt stripped", wantID: "runtime/go@1.26/module/fmt", wantStatus: snapshot.StatusMissing,
		goodRoot: func(tb testing.TB) string { return goFixture(tb, false) },
		badRoot:  func(tb testing.TB) string { return goFixture(tb, true) }})
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
