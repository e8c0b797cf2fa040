package main

import (
	"bytes"
	"context"
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
	"github.com/imagegate/imagegate/internal/signature"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

// TestAnalysisOutputs runs `rollout analysis` and `signatures` in process
// against a real server with the telemetry gate, on a fixed clock and a
// fixed stream of job events, and compares their table and JSON output
// with testdata/analysis.golden (-update-client rewrites it).
func TestAnalysisOutputs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "ig.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	health := rollout.NewTelemetryHealth(st, rollout.AnalysisPolicies{}, nil)
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{Clock: clk, AllowUnknownGate: true, Health: health, Analyzer: health,
		Signer: signature.NewSigner(signature.Options{}, nil)})
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

	var canary []string
	for i := range 6 {
		canary = append(canary, fmt.Sprintf("org-%d", i))
	}
	if err := svc.SetRings(ctx, "test", "", []rollout.Ring{
		{Name: "canary", Orgs: canary, BakeTime: time.Hour},
		{Name: "everyone", Percent: 100},
	}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1", "v2"} {
		if _, err := svc.PushVersion(ctx, "test", rollout.Version{Label: "ubuntu-22.04", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.StartRollout(ctx, "test", rollout.StartRequest{Label: "ubuntu-22.04", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	r, err := svc.StartRollout(ctx, "test", rollout.StartRequest{Label: "ubuntu-22.04", Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	ctl := rollout.NewController(svc, st, rollout.ControllerOptions{Holder: "golden", Clock: clk})
	if err := ctl.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	// Ring 0 orgs on v2 (four of them hit the sqlite break), twenty orgs
	// on v1; a background error on both.
	var evs []rollout.JobEvent
	ev := func(org string, p int, version, text string) {
		e := rollout.JobEvent{JobID: fmt.Sprintf("j%d", len(evs)), Org: org, Label: "ubuntu-22.04", Version: version,
			Pipeline: fmt.Sprintf("%s/app-%d", org, p), StartedAt: clk.Now(), DurationMs: 1000, Outcome: rollout.OutcomeSucceeded}
		if text != "" {
			e.Outcome, e.ErrorText = rollout.OutcomeFailed, text
		}
		evs = append(evs, e)
	}
	const (
		sqliteErr = "Traceback (most recent call last):\n  File \"migrate.py\", line 3, in <module>\nModuleNotFoundError: No module named '_sqlite3'\n"
		flaky     = "Run tests\nERROR: connection reset by peer after 31 retries\n"
	)
	for i, org := range canary {
		for p := range 5 {
			switch {
			case p == 0 && i < 4:
				ev(org, p, "v2", sqliteErr)
			case p == 1 && i%2 == 0:
				ev(org, p, "v2", flaky)
			default:
				ev(org, p, "v2", "")
			}
		}
	}
	for i := range 20 {
		org := fmt.Sprintf("org-%d", 100+i)
		for p := range 5 {
			text := ""
			if p == 1 && i%3 == 0 {
				text = flaky
			}
			ev(org, p, "v1", text)
		}
	}
	if _, err := svc.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}

	commands := [][]string{
		{"rollout", "analysis", "ubuntu-22.04", "-o", "table"},
		{"rollout", "analysis", r.ID, "-o", "json"},
		{"signatures", "ubuntu-22.04", "-o", "table"},
		{"signatures", "ubuntu-22.04", "v2", "-o", "json"},
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
	ids := map[string]string{}
	got := regexp.MustCompile(`r-[0-9a-f]{12}`).ReplaceAllStringFunc(out.String(), func(id string) string {
		if _, ok := ids[id]; !ok {
			ids[id] = fmt.Sprintf("r-%012d", len(ids))
		}
		return ids[id]
	})
	golden := filepath.Join(testdataDir(t), "analysis.golden")
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
		t.Errorf("analysis output differs from %s (-want +got):\n%s", golden, diff)
	}
}
