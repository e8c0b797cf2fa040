package runtimes_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// regression is a real fixture made from an untouched one, and the one
// part that must fail the gate because of it.
type regression struct {
	name      string
	good, bad string // tool folders
	// goodRoot and badRoot build fresh trees instead, root filesystems
	// when rootFS is set (scanned chrooted with execution).
	goodRoot, badRoot func(testing.TB) string
	rootFS            bool
	wantID            string
	wantStatus        string // the check line's first word
}

// mustGate runs the release gate (check without a baseline, and diff) over
// the snapshots of an untouched build and of the regression: the untouched
// one passes, the regression fails check and diff with exactly one line,
// naming the part.
func mustGate(t *testing.T, tc regression) {
	t.Helper()
	for _, mode := range modes() {
		t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
			exec := snapshot.ExecNone
			if mode.execute {
				exec = snapshot.ExecLocal
			}
			snap := func(root string, build func(testing.TB) string) *snapshot.Snapshot {
				if build != nil {
					root = build(t)
				}
				collectTree := collect
				if tc.rootFS {
					collectTree = collectRootFS
				}
				rs, _ := collectTree(t, root, mode.execute)
				s := &snapshot.Snapshot{Schema: snapshot.SchemaV1, Source: "dir:image", Exec: exec, Runtimes: rs}
				s.Normalize()
				return s
			}
			good, bad := snap(tc.good, tc.goodRoot), snap(tc.bad, tc.badRoot)
			ctx := context.Background()
			rep, err := check.Run(ctx, good, check.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if f := rep.Failures(); len(f) != 0 {
				t.Errorf("check of the untouched build fails: %+v", f)
			}
			rep, err = check.Run(ctx, bad, check.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range rep.Failures() {
				status, _, _ := strings.Cut(f.Message, ":")
				got = append(got, f.ID+" "+status)
			}
			if diff := cmp.Diff([]string{tc.wantID + " " + tc.wantStatus}, got); diff != "" {
				t.Errorf("check failures (-want +got):\n%s", diff)
			}
			d := diff.Compare(good, bad, nil)
			var unexpected []string
			for _, c := range d.Changes {
				if c.Unexpected {
					unexpected = append(unexpected, c.ID)
				}
			}
			if diff := cmp.Diff([]string{tc.wantID}, unexpected); diff != "" {
				t.Errorf("unexpected diff changes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJavaGate(t *testing.T) {
	d := javaFixtures(t)
	for _, tc := range []regression{
		{name: "jlink without jdk.crypto.ec", good: filepath.Join(d, "linked"), bad: filepath.Join(d, "no-ec"),
			wantID: "runtime/java@17/module/jdk.crypto.ec", wantStatus: snapshot.StatusMissing},
		{name: "empty trust store", good: filepath.Join(d, "linked"), bad: filepath.Join(d, "no-certs"),
			wantID: "runtime/java@17/module/cacerts", wantStatus: snapshot.StatusBroken},
	} {
		mustGate(t, tc)
	}
}
