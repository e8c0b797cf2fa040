package check_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// TestPackageAdvice: Debian packages are advised only for a Python that
// Debian's Python packages own, not for one another package bundles (the
// Google Cloud SDK's 3.12, owned by google-cloud-cli), which no Debian
// package completes.
func TestPackageAdvice(t *testing.T) {
	absent := []snapshot.Module{{Name: "lib2to3", Status: snapshot.StatusMissing}, {Name: "idlelib", Status: snapshot.StatusMissing}}
	for _, tc := range []struct {
		name, path, owner string
		wantMessage       string
		wantEvidence      []string
	}{
		{"debian's python3.12", "/usr", "libpython3.12-minimal:amd64",
			"not installed (the distribution ships them in optional packages): idlelib, lib2to3",
			[]string{"idlelib: in idle-python3.12", "lib2to3: in python3-lib2to3"}},
		{"the cloud sdk's bundled python", "/usr/lib/google-cloud-sdk/platform/bundledpythonunix", "google-cloud-cli",
			"not installed (package google-cloud-cli, which ships this Python, leaves them out): idlelib, lib2to3",
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := pythonRuntime(t, "3.12.3", tc.path, snapshot.OriginOSPackage, absent...)
			rt.OwnerPackage = tc.owner
			r, err := check.Run(context.Background(), &snapshot.Snapshot{Schema: snapshot.SchemaV1, Exec: snapshot.ExecLocal, Runtimes: []snapshot.Runtime{rt}}, check.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got *check.Result
			for i := range r.Results {
				if r.Results[i].ID == "runtime/python@3.12/modules/not-installed" {
					got = &r.Results[i]
				}
			}
			if got == nil {
				t.Fatalf("no not-installed note in %+v", r.Results)
			}
			if got.Status != check.StatusInfo || got.Message != tc.wantMessage {
				t.Errorf("got %s %q, want info %q", got.Status, got.Message, tc.wantMessage)
			}
			if d := cmp.Diff(tc.wantEvidence, got.Evidence); d != "" {
				t.Errorf("evidence (-want +got):\n%s", d)
			}
		})
	}
}
