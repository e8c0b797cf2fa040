package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/analysis"
	"github.com/imagegate/imagegate/internal/config"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/yamlx"
)

func TestParseConfig(t *testing.T) {
	c, err := config.Parse("imagegate.yaml", []byte(`
listen: ":9090"
dataDir: /var/lib/imagegate
rings:
  - {name: canary, orgs: [imagegate-team], bakeTime: 2h, minJobs: 50}
  - {name: early, percent: 10, bakeTime: 24h, minJobs: 500, controlPercent: 10}
  - {name: everyone, percent: 100}
images:
  ubuntu-16.04:
    rings: [{name: all, percent: 100, bakeTime: 30m, manualApproval: true}]
policies: {expeditedBakeFactor: 0.2, pinExpiryWarning: 48h, maxFailureRate: 0.05}
controller: {interval: 2s, leaseTTL: 15s}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []rollout.Ring{
		{Name: "canary", Orgs: []string{"imagegate-team"}, BakeTime: 2 * time.Hour, MinJobs: 50},
		{Name: "early", Percent: 10, BakeTime: 24 * time.Hour, MinJobs: 500, ControlPercent: 10},
		{Name: "everyone", Percent: 100},
	}
	if diff := cmp.Diff(want, config.RingPlan(c.Rings)); diff != "" {
		t.Errorf("rings (-want +got):\n%s", diff)
	}
	if c.Listen != ":9090" || c.Policies.PinExpiryWarning != 48*time.Hour || c.Controller.LeaseTTL != 15*time.Second ||
		!c.Images["ubuntu-16.04"].Rings[0].ManualApproval {
		t.Errorf("config: %+v", c)
	}
	env := map[string]string{"IMAGEGATE_LISTEN": "127.0.0.1:1", "IMAGEGATE_DB": "postgres://x"}
	c.ApplyEnv(func(k string) string { return env[k] })
	if c.Listen != "127.0.0.1:1" || c.DB != "postgres://x" || c.DataDir != "/var/lib/imagegate" {
		t.Errorf("after env: listen %q db %q dataDir %q", c.Listen, c.DB, c.DataDir)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"typo", "listne: :80", "field listne not found"},
		{"last ring not everyone", "rings: [{name: a, percent: 50}]", "must cover everyone"},
		{"bad duration", "rings: [{name: a, percent: 100, bakeTime: tomorrow}]", "`tomorrow` into time.Duration"},
		{"image without rings", "images: {u: {}}", "images.u: no rings"},
		{"factor", "policies: {expeditedBakeFactor: 3}", "expeditedBakeFactor"},
		{"lease shorter than interval", "controller: {interval: 10s, leaseTTL: 5s}", "shorter than leaseTTL"},
		{"analysis typo", "analysis: {alhpa: 0.01}", "field alhpa not found"},
		{"analysis action", "analysis: {action: panic}", `analysis: analysis action "panic"`},
		{"analysis alpha", "analysis: {alpha: 2}", "analysis alpha 2"},
		{"analysis minOrgs", "analysis: {minOrgs: 40}", "analysis minOrgs 40: at most 11"},
		{"analysis ring override", "analysis: {rings: {canary: {action: stop}}}", `analysis.rings.canary: analysis action "stop"`},
		{"analysis ring typo", "analysis: {rings: {canary: {acton: halt}}}", "field acton not found"},
		{"tls without key", "tls: {cert: /c.pem}", "tls: give both cert and key"},
		{"tls typo", "tls: {crt: /c.pem}", "field crt not found"},
		{"negative burst", "limits: {burst: -1}", "limits: bursts must not be negative"},
		{"negative timeout", "timeouts: {read: -1s}", "timeouts: durations must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("imagegate.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestAnalysisConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		ring       string
		want       rollout.AnalysisPolicy
	}{
		{"defaults: on, rollback", "", "canary",
			rollout.AnalysisPolicy{Params: analysis.DefaultParams(), Action: rollout.ActionRollback}},
		{"top level", "analysis: {alpha: 0.01, minOrgs: 5, action: halt}", "early",
			rollout.AnalysisPolicy{Params: withAlphaOrgs(0.01, 5), Action: rollout.ActionHalt}},
		{"ring override keeps the rest", "analysis: {alpha: 0.01, action: halt, rings: {canary: {action: dry-run}}}", "canary",
			rollout.AnalysisPolicy{Params: withAlphaOrgs(0.01, 3), Action: rollout.ActionDryRun}},
		{"other rings keep the top level", "analysis: {alpha: 0.01, action: halt, rings: {canary: {action: dry-run, minOrgs: 2}}}", "early",
			rollout.AnalysisPolicy{Params: withAlphaOrgs(0.01, 3), Action: rollout.ActionHalt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("imagegate.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, c.Analysis.Policies().For(tt.ring)); d != "" {
				t.Errorf("policy of ring %s (-want +got):\n%s", tt.ring, d)
			}
		})
	}
}

func withAlphaOrgs(alpha float64, orgs int) analysis.Params {
	p := analysis.DefaultParams()
	p.Alpha, p.MinOrgs = alpha, orgs
	return p
}

func TestRingPlans(t *testing.T) {
	c, err := config.Parse("imagegate.yaml", []byte(`
rings: [{name: canary, orgs: [a], bakeTime: 1h}, {name: all, percent: 100}]
images: {u: {rings: [{name: all, percent: 100, bakeTime: 5m}]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]rollout.Ring{
		"":  {{Name: "canary", Orgs: []string{"a"}, BakeTime: time.Hour}, {Name: "all", Percent: 100}},
		"u": {{Name: "all", Percent: 100, BakeTime: 5 * time.Minute}},
	}
	if diff := cmp.Diff(want, c.RingPlans()); diff != "" {
		t.Errorf("plans (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]rollout.Ring{}, (config.Config{}).RingPlans()); diff != "" {
		t.Errorf("plans of an empty config (-want +got):\n%s", diff)
	}
}

// TestLoad: flags given beat IMAGEGATE_* variables, which beat the file
// (found through IMAGEGATE_CONFIG too), which beats the flags' defaults.
func TestLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "imagegate.yaml")
	if err := os.WriteFile(file, []byte("listen: ':7000'\ndb: /file.db\ntls: {cert: /f.crt, key: /f.key}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defaults := config.Flags{Listen: config.Flag{Value: ":8080"}, DataDir: config.Flag{Value: "imagegate-data"}}
	type got struct{ Listen, DB, DataDir, Cert, Key string }
	tests := []struct {
		name  string
		path  string
		env   map[string]string
		flags config.Flags
		want  got
	}{
		{"defaults", "", nil, defaults, got{":8080", "", "imagegate-data", "", ""}},
		{"file", file, nil, defaults, got{":7000", "/file.db", "imagegate-data", "/f.crt", "/f.key"}},
		{"file from env", "", map[string]string{"IMAGEGATE_CONFIG": file}, defaults, got{":7000", "/file.db", "imagegate-data", "/f.crt", "/f.key"}},
		{"env over file", file, map[string]string{"IMAGEGATE_LISTEN": ":7001", "IMAGEGATE_DATA_DIR": "/env", "IMAGEGATE_TLS_CERT": "/e.crt"}, defaults,
			got{":7001", "/file.db", "/env", "/e.crt", "/f.key"}},
		{"flag over env", file, map[string]string{"IMAGEGATE_LISTEN": ":7001"},
			config.Flags{Listen: config.Flag{Value: ":9", Given: true}, DB: config.Flag{Value: "/flag.db", Given: true},
				TLSCert: config.Flag{Value: "/g.crt", Given: true}, TLSKey: config.Flag{Value: "/g.key", Given: true}},
			got{":9", "/flag.db", "", "/g.crt", "/g.key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(tt.path, func(k string) string { return tt.env[k] }, tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got{c.Listen, c.DB, c.DataDir, c.TLS.Cert, c.TLS.Key}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: :80\nrings:\n  - {name: a, percent: 100, bakeTim: 1h}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	none := func(string) string { return "" }
	_, err := config.Load(bad, none, config.Flags{})
	var ye *yamlx.Error
	if want := bad + `:3: rings[0]: field bakeTim not found; did you mean "bakeTime"?`; !errors.As(err, &ye) || err.Error() != want {
		t.Errorf("Load(bad) = %v, want %s", err, want)
	}
	onlyKey := config.Flags{TLSKey: config.Flag{Value: "/k.pem", Given: true}}
	if _, err := config.Load("", none, onlyKey); err == nil || !strings.Contains(err.Error(), "give both cert and key") {
		t.Errorf("Load(--tls-key only) = %v, want a refusal naming both", err)
	}
	if _, err := config.Load(filepath.Join(dir, "absent.yaml"), none, config.Flags{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(absent) = %v, want ErrNotExist", err)
	}
}

func TestLimits(t *testing.T) {
	type lim struct {
		Rate     float64
		Burst    int
		HotRate  float64
		HotBurst int
	}
	for _, tt := range []struct {
		name, yaml string
		want       lim
	}{
		{"defaults", "", lim{50, 100, 200000, 400000}},
		{"set", "limits: {rate: 5, burst: 7, hotRate: 100, hotBurst: 300}", lim{5, 7, 100, 300}},
		{"burst follows a big rate", "limits: {rate: 500}", lim{500, 500, 200000, 400000}},
		{"off", "limits: {rate: -1, hotRate: -1}", lim{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("imagegate.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			var got lim
			got.Rate, got.Burst, got.HotRate, got.HotBurst = c.Limits.Effective()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		want       config.TimeoutsConfig
	}{
		{"defaults", "", config.TimeoutsConfig{ReadHeader: 10 * time.Second, Read: 5 * time.Minute, Write: 5 * time.Minute, Idle: 2 * time.Minute}},
		{"some set", "timeouts: {readHeader: 2s, idle: 30s}", config.TimeoutsConfig{ReadHeader: 2 * time.Second, Read: 5 * time.Minute, Write: 5 * time.Minute, Idle: 30 * time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("imagegate.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Timeouts.Effective()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
