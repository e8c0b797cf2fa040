package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/config"
	"github.com/imagegate/imagegate/internal/rollout"
)

// TestExampleConfig keeps examples/imagegate.yaml a config that parses,
// with the alert targets and the report policy it documents.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../examples/imagegate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("imagegate.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	wantTargets := []alert.Target{
		{URL: "https://hooks.slack.com/services/T000/B000/XXXXXXXX", Format: "slack"},
		{URL: "https://ops.example.com/hooks/imagegate", Format: "json"},
	}
	if diff := cmp.Diff(wantTargets, c.AlertTargets()); diff != "" {
		t.Errorf("alert targets (-want +got):\n%s", diff)
	}
	wantPolicy := rollout.ReportPolicy{EscalateOrgs: 3, Window: 24 * time.Hour, Action: rollout.EscalateHalt}
	if diff := cmp.Diff(wantPolicy, c.ReportPolicy()); diff != "" {
		t.Errorf("report policy (-want +got):\n%s", diff)
	}
	if got := c.BaseURL("[::]:8080"); got != "https://imagegate.example.com" {
		t.Errorf("BaseURL = %q, want the external URL", got)
	}
}

func TestAlertsConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"typo in target", "alerts: [{url: 'http://x', fromat: json}]", "alerts[0]: field fromat not found"},
		{"relative url", "alerts: [{url: /hook}]", "alerts[0]: alert target <invalid url>: invalid: the url must be an absolute"},
		{"bad format", "alerts: [{url: 'http://x/h', format: xml}]", `format "xml" is none of json, slack, teams`},
		{"twice", "alerts: [{url: 'http://x/h'}, {url: 'http://x/h', format: json}]", "alerts[1]: the same target as alerts[0]"},
		{"external url", "externalURL: imagegate.example.com", "externalURL: \"imagegate.example.com\": want an absolute"},
		{"reports typo", "reports: {escalateOrg: 3}", "field escalateOrg not found"},
		{"reports action", "reports: {action: rollback}", `reports: action "rollback": invalid: want halt or alert`},
		{"reports orgs", "reports: {escalateOrgs: -1}", "reports: escalateOrgs -1"},
		{"reports window", "reports: {window: -1h}", "reports: window -1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tt.yaml, err, tt.want)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		external, addr, want string
	}{
		{"", "[::]:8080", "http://127.0.0.1:8080"},
		{"", "0.0.0.0:9000", "http://127.0.0.1:9000"},
		{"", "10.1.2.3:8080", "http://10.1.2.3:8080"},
		{"https://ig.example.com/", "[::]:8080", "https://ig.example.com"},
	}
	for _, tt := range tests {
		if got := (config.Config{ExternalURL: tt.external}).BaseURL(tt.addr); got != tt.want {
			t.Errorf("BaseURL(%q) with externalURL %q = %q, want %q", tt.addr, tt.external, got, tt.want)
		}
	}
	env := map[string]string{"IMAGEGATE_EXTERNAL_URL": "https://env.example.com"}
	c, err := config.Load("", func(k string) string { return env[k] }, config.Flags{})
	if err != nil || c.ExternalURL != "https://env.example.com" {
		t.Errorf("Load with IMAGEGATE_EXTERNAL_URL: %q, %v", c.ExternalURL, err)
	}
	c, err = config.Load("", func(k string) string { return env[k] },
		config.Flags{ExternalURL: config.Flag{Value: "https://flag.example.com", Given: true}})
	if err != nil || c.ExternalURL != "https://flag.example.com" {
		t.Errorf("Load with --external-url: %q, %v", c.ExternalURL, err)
	}
	if _, err := config.Load("", func(string) string { return "" }, config.Flags{ExternalURL: config.Flag{Value: "ftp://x", Given: true}}); err == nil {
		t.Error("Load with --external-url ftp://x: no error")
	}
}
