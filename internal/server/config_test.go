package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
)

func TestParseConfig(t *testing.T) {
	c, err := server.ParseConfig([]byte(`
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
	if diff := cmp.Diff(want, server.RingPlan(c.Rings)); diff != "" {
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.ParseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
