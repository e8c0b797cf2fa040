package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/config"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

// TestReportCommand runs `imagegate report` in process against a real
// server: the -o json output is the ReportResult, the text may come from
// stdin, and a report without text is refused before any request.
func TestReportCommand(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ig.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.PushVersion(ctx, "test", rollout.Version{Label: "ubuntu-22.04", Version: "v1", Snapshot: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	_, reports, err := serveAlerts(svc, st, config.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := server.BootstrapAdmin(ctx, st, "report-admin", io.Discard, clk.Now()); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Service: svc, Store: st, Now: clk.Now, Reports: reports})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	t.Setenv("IMAGEGATE_TOKEN", "report-admin")
	t.Setenv("IMAGEGATE_SERVER", hs.URL)

	run := func(stdin string, args ...string) (string, error) {
		var stdout bytes.Buffer
		root := newRootCmd(&stdout, io.Discard)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(args)
		err := root.ExecuteContext(ctx)
		return stdout.String(), err
	}
	out, err := run("", "report", "ubuntu-22.04", "--text", "ModuleNotFoundError: No module named '_sqlite3'", "--job", "j-1", "--org", "org-a", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res rollout.ReportResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("-o json: %v in %q", err, out)
	}
	if res.Report.ID == 0 || res.Report.Org != "org-a" || res.Report.JobID != "j-1" || res.Report.Actor != "token:bootstrap-admin (tok-"+hex.EncodeToString(server.HashToken("report-admin")[:6])+", admin)" {
		t.Errorf("report %+v, want it stored for org-a with its job", res.Report)
	}
	out, err = run("Error: Process completed with exit code 1.\n", "report", "ubuntu-22.04", "--text-file", "-", "--org", "org-b", "-o", "table")
	if err != nil || !strings.Contains(out, "org-b") || !strings.Contains(out, "ubuntu-22.04") {
		t.Errorf("report from stdin: %q, %v", out, err)
	}
	if _, err := run("", "report", "ubuntu-22.04", "--org", "org-a"); err == nil || !strings.Contains(err.Error(), "--text") {
		t.Errorf("report without text: %v, want an error naming --text", err)
	}
	if _, err := run("", "report", "ubuntu-22.04", "--text", "x"); err == nil || !strings.Contains(err.Error(), "org") {
		t.Errorf("admin report without --org: %v, want the server's refusal naming org", err)
	}
}
