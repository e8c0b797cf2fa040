package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/sqlite"
)

// TestServeConfigPrecedence: flags given on the command line beat
// IMAGEGATE_* variables, which beat the config file, which beats defaults.
func TestServeConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "imagegate.yaml")
	os.WriteFile(file, []byte("listen: ':7000'\ndb: /file.db\ndataDir: /file-data\n"), 0o644)
	type got struct{ Listen, DB, DataDir string }
	tests := []struct {
		name    string
		config  string
		env     map[string]string
		changed []string
		want    got
	}{
		{"defaults", "", nil, nil, got{":8080", "", "imagegate-data"}},
		{"file", file, nil, nil, got{":7000", "/file.db", "/file-data"}},
		{"env over file", file, map[string]string{"IMAGEGATE_DB": "postgres://env", "IMAGEGATE_LISTEN": ":7001"}, nil, got{":7001", "postgres://env", "/file-data"}},
		{"flag over env", file, map[string]string{"IMAGEGATE_LISTEN": ":7001"}, []string{"listen", "data-dir"}, got{"127.0.0.1:9", "/file.db", "/flag-data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &serveOptions{config: tt.config, listen: "127.0.0.1:9", dataDir: "/flag-data",
				getenv: func(k string) string { return tt.env[k] }}
			if len(tt.changed) == 0 {
				opts.listen, opts.dataDir = ":8080", "imagegate-data" // the flag defaults
			}
			cfg, err := serveConfig(opts, func(f string) bool {
				for _, c := range tt.changed {
					if c == f {
						return true
					}
				}
				return false
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got{cfg.Listen, cfg.DB, cfg.DataDir}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyRingsIdempotent: restarting with the same config stores the
// plans once; a changed plan is stored again, each time with an audit entry.
func TestApplyRingsIdempotent(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ig.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	cfg, err := server.ParseConfig([]byte(`
rings: [{name: canary, orgs: [a], bakeTime: 1h}, {name: all, percent: 100}]
images: {u: {rings: [{name: all, percent: 100, bakeTime: 5m}]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	audits := func() int {
		es, _, err := st.ListAudit(ctx, rollout.AuditFilter{Actor: "config"}, rollout.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	for range 2 {
		if err := applyRings(ctx, svc, st, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if n := audits(); n != 2 {
		t.Fatalf("%d audit entries by config after two identical starts, want 2 (global and u)", n)
	}
	cfg.Images["u"].Rings[0].BakeTime = 10 * time.Minute
	if err := applyRings(ctx, svc, st, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetRings(ctx, "u")
	if err != nil || got[0].BakeTime != 10*time.Minute || audits() != 3 {
		t.Fatalf("changed plan: %+v, %v, %d audit entries", got, err, audits())
	}
}
