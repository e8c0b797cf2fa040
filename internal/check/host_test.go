package check_test

import (
	"context"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// TestDistributionPythonOnHost scans this machine (Debian 12) and checks
// that the distribution's own python3 — with python3-tk, python3-gdbm and
// idle not installed — passes with notes, not failures: a pristine
// distribution must pass with no configuration.
func TestDistributionPythonOnHost(t *testing.T) {
	if testing.Short() {
		t.Skip("scans the whole machine")
	}
	ctx := context.Background()
	tree, err := source.Open(ctx, "host", source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	snap, err := scan.Scan(ctx, tree, scan.Options{Exec: scan.ExecNone})
	if err != nil {
		t.Fatal(err)
	}
	r, err := check.Run(ctx, snap, check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rt := range snap.Runtimes {
		if rt.Kind == "python" && rt.Path == "/usr" {
			found = true
			if rt.Origin != "os-package" {
				t.Errorf("/usr python has origin %q, want os-package", rt.Origin)
			}
		}
	}
	testenv.Require(t, found, "no distribution python under /usr on this machine")
	for _, f := range r.Failures() {
		if strings.Contains(f.Name, " at /usr (") {
			t.Errorf("distribution python fails: %s: %s (%s)", f.ID, f.Message, f.Name)
		}
	}
	for _, f := range r.Results {
		if f.Status == check.StatusPass {
			continue
		}
		t.Logf("%s %s: %s [%s]", f.Status, f.ID, f.Message, f.Name)
	}
}
