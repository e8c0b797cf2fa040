package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

// -update-client, not -update: other tests of this package may define that.
var updateClient = flag.Bool("update-client", false, "rewrite testdata/client.golden")

// TestClientOutputs runs the client commands in process against a real
// server on a fixed clock and compares their table and JSON output with
// testdata/client.golden.
func TestClientOutputs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "ig.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	// The golden session rolls out a version pushed without a check
	// report, as a server configured with policies.allowUnknownGate allows.
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{Clock: clk, AllowUnknownGate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := server.BootstrapAdmin(ctx, st, "golden-admin", io.Discard, clk.Now()); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Service: svc, Store: st, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	t.Setenv("IMAGEGATE_TOKEN", "golden-admin")
	t.Setenv("IMAGEGATE_SERVER", hs.URL)
	os.WriteFile(filepath.Join(dir, "snap.json"), []byte(`{"schemaVersion":1}`), 0o644)
	os.WriteFile(filepath.Join(dir, "pass.json"), []byte(`{"verdict":"pass"}`), 0o644)
	if err := svc.SetRings(ctx, "test", "", []rollout.Ring{
		{Name: "canary", Orgs: []string{"org-a"}, BakeTime: time.Hour},
		{Name: "everyone", Percent: 100},
	}); err != nil {
		t.Fatal(err)
	}

	commands := [][]string{
		{"version", "push", "ubuntu-22.04", "v1", "--snapshot", "snap.json", "--check-report", "pass.json", "-o", "table"},
		{"version", "push", "ubuntu-22.04", "v2", "--snapshot", "snap.json", "-o", "json"},
		{"version", "list", "ubuntu-22.04", "-o", "table"},
		{"rollout", "start", "ubuntu-22.04", "v1", "-o", "table"},
		{"rollout", "start", "ubuntu-22.04", "v2", "--bake", "canary=30m", "-o", "table"},
		{"rollout", "list", "-o", "table"},
		{"rollout", "status", "ubuntu-22.04", "-o", "table"},
		{"pin", "set", "org-b", "ubuntu-22.04", "v1", "--reason", "builds break on v2", "--expires", "2026-03-05T00:00:00Z", "-o", "table"},
		{"pin", "list", "-o", "table"},
		{"resolve", "--org", "org-b", "ubuntu-22.04", "-o", "table"},
		{"resolve", "--org", "org-a", "ubuntu-22.04", "-o", "json"},
		{"pin", "clear", "org-b", "ubuntu-22.04", "-o", "json"},
	}
	t.Chdir(dir)
	var out bytes.Buffer
	for _, args := range commands {
		var stdout bytes.Buffer
		root := newRootCmd(&stdout, io.Discard)
		root.SetArgs(args)
		if err := root.ExecuteContext(ctx); err != nil {
			t.Fatalf("imagegate %s: %v", strings.Join(args, " "), err)
		}
		out.WriteString("$ imagegate " + strings.Join(args, " ") + "\n" + stdout.String() + "\n")
	}
	// Rollout IDs are random; their stand-ins keep the tables aligned.
	ids := map[string]string{}
	got := regexp.MustCompile(`r-[0-9a-f]{12}`).ReplaceAllStringFunc(out.String(), func(id string) string {
		if _, ok := ids[id]; !ok {
			ids[id] = fmt.Sprintf("r-%012d", len(ids))
		}
		return ids[id]
	})
	golden := filepath.Join(testdataDir(t), "client.golden")
	if *updateClient {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-client to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("client output differs from %s (-want +got):\n%s", golden, diff)
	}
}

// testdataDir is this package's testdata, found before any t.Chdir.
var testdataDir = func() func(t *testing.T) string {
	wd, _ := os.Getwd()
	return func(t *testing.T) string { return filepath.Join(wd, "testdata") }
}()
