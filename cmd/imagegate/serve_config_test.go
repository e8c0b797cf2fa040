package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
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
