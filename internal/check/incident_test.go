package check_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// TestIncidentRealScan is the 2019 incident on a real build: a copy of this
// machine's CPython 3.7 with lib-dynload/_sqlite3*.so deleted, scanned as a
// tool folder without and with execution, must fail the check on exactly
// one more line than the intact copy does — sqlite3, with its cause — and
// _sqlite3 must not be a second failure. (The intact pyenv builds here may
// fail on their own, e.g. _dbm and _gdbm when built without libgdbm-dev;
// those are logged.)
func TestIncidentRealScan(t *testing.T) {
	build := testenv.RequirePython(t, "3.7.16")
	tools := t.TempDir()
	copyDir := filepath.Join(tools, "3.7.16")
	// Hard links: fast, and deleting one name leaves the original alone.
	if out, err := exec.Command("cp", "-al", build, copyDir).CombinedOutput(); err != nil {
		t.Fatalf("cp -al: %v\n%s", err, out)
	}
	failures := func(t *testing.T, mode string) map[string]string {
		ctx := context.Background()
		tree, err := source.Open(ctx, "dir:"+tools, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer tree.Close()
		snap, err := scan.Scan(ctx, tree, scan.Options{Exec: mode})
		if err != nil {
			t.Fatal(err)
		}
		r, err := check.Run(ctx, snap, check.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, f := range r.Failures() {
			out[f.ID] = f.Message
		}
		return out
	}
	modes := []string{scan.ExecNone, scan.ExecLocal}
	before := map[string]map[string]string{}
	for _, mode := range modes {
		before[mode] = failures(t, mode)
		t.Logf("intact build, --exec %s: failures %v", mode, before[mode])
	}
	sos, _ := filepath.Glob(filepath.Join(copyDir, "lib", "python3.7", "lib-dynload", "_sqlite3*.so"))
	if len(sos) == 0 {
		t.Fatal("the 3.7 build has no _sqlite3 extension to delete")
	}
	for _, so := range sos {
		if err := os.Remove(so); err != nil {
			t.Fatal(err)
		}
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			after := failures(t, mode)
			var added []string
			for id, msg := range after {
				if _, ok := before[mode][id]; !ok {
					added = append(added, id+": "+msg)
				}
			}
			for id := range before[mode] {
				if _, ok := after[id]; !ok {
					t.Errorf("%s failed before the deletion but not after", id)
				}
			}
			status := "import-error"
			if mode == scan.ExecNone {
				status = "broken"
			}
			want := []string{"runtime/python@3.7/module/sqlite3: " + status + ": No module named '_sqlite3'"}
			if diff := cmp.Diff(want, added); diff != "" {
				t.Errorf("new failures (-want +got):\n%s", diff)
			}
		})
	}
}
