package runtimes_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
)

const debianRubyArch = "usr/lib/x86_64-linux-gnu/ruby/3.1.0"

// rubyRootFS is Debian's Ruby 3.1 unpacked into a root filesystem; without
// psych.so when stripped, as a Ruby built without libyaml's headers is.
func rubyRootFS(tb testing.TB, withoutPsych bool) string {
	tb.Helper()
	root := mustRootFS(tb, debs(tb, "ruby3.1", "libruby3.1", "rubygems-integration", "libyaml-0-2", "libedit2", "libffi8", "libgmp10"),
		"usr/bin/ruby3.1", debianRubyArch+"/*.so", debianRubyArch+"/*/*.so")
	if withoutPsych {
		if err := os.Remove(filepath.Join(root, debianRubyArch, "psych.so")); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

func TestRubyDebian(t *testing.T) {
	for _, strip := range []bool{false, true} {
		for _, mode := range modes() {
			t.Run(map[bool]string{false: "debian", true: "without psych.so"}[strip]+"/"+mode.name, func(t *testing.T) {
				rs, warnings := collectRootFS(t, rubyRootFS(t, strip), mode.execute)
				if len(warnings) > 0 {
					t.Errorf("warnings: %q", warnings)
				}
				r := onlyRuntime(t, rs, runtimes.KindRuby)
				want, _ := runtimes.ExpectedParts("ruby", "3.1")
				if len(r.Modules) != len(want) || len(want) < 20 {
					t.Errorf("%d parts, want the %d of the generated list", len(r.Modules), len(want))
				}
				var bad []string
				for _, m := range r.Modules {
					if m.Status != snapshot.StatusOK {
						bad = append(bad, m.Name+" "+m.Status+": "+m.Error)
					}
				}
				var wantBad []string
				if strip {
					wantBad = []string{"psych missing: cannot load such file -- psych"}
					if mode.execute {
						// Ruby's own words: lib/psych.rb is there and
						// requires the extension that is not.
						wantBad = []string{"psych missing: cannot load such file -- psych.so"}
					}
				}
				if diff := cmp.Diff(wantBad, bad); diff != "" {
					t.Errorf("parts not ok (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestRubyGate(t *testing.T) {
	mustGate(t, regression{name: "psych.so deleted", wantID: "runtime/ruby@3.1/module/psych", wantStatus: snapshot.StatusMissing, rootFS: true,
		goodRoot: func(tb testing.TB) string { return rubyRootFS(tb, false) },
		badRoot:  func(tb testing.TB) string { return rubyRootFS(tb, true) }})
}
