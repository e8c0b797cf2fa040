// Package config is the serve command's configuration: the YAML file, the
// IMAGEGATE_* environment variables and the flags that override them, merged
// in that order. It knows the domain's ring plans and policies, and nothing
// of HTTP or of the stores.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/analysis"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/yamlx"
)

// Config is the serve command's YAML file: where to listen and store, the
// ring plans, and the rollout policies. Flags and IMAGEGATE_* environment
// variables override the first three.
//
//	listen: ":8080"
//	db: postgres://imagegate@db/imagegate   # default: SQLite in dataDir
//	dataDir: /var/lib/imagegate
//	rings:                                  # the global plan
//	  - {name: canary, orgs: [imagegate-team], bakeTime: 2h, minJobs: 50}
//	  - {name: early, percent: 10, bakeTime: 24h, minJobs: 500, controlPercent: 10}
//	  - {name: everyone, percent: 100, bakeTime: 0s}
//	images:                                 # plans for one label
//	  ubuntu-16.04: {rings: [...]}
//	policies:
//	  expeditedBakeFactor: 0.1
//	  pinExpiryWarning: 72h
//	  maxFailureRate: 0.05
//	  healthMinJobs: 20
//	analysis:                               # the telemetry decision, on by default
//	  alpha: 0.001                          # false-alarm bound per ring, however often checked
//	  minOrgs: 3                            # orgs a regression must affect
//	  action: rollback                      # rollback | halt | dry-run
//	  rings:                                # overrides by ring name
//	    canary: {action: halt}
//	controller: {interval: 1s, leaseTTL: 10s}
//	externalURL: https://imagegate.example.com  # links in alerts; default: the listen address
//	alerts:                                 # one POST per decision, retried until acknowledged
//	  - {url: https://hooks.slack.com/services/T0/B0/XXX, format: slack}
//	  - {url: https://ops.example.com/imagegate, format: json}
//	reports: {escalateOrgs: 3, window: 24h, action: halt}
//	limits: {rate: 50, burst: 100, hotRate: 200000, hotBurst: 400000}  # per token
//	timeouts: {readHeader: 10s, read: 5m, write: 5m, idle: 2m}
//	tls: {cert: /etc/imagegate/tls.crt, key: /etc/imagegate/tls.key}  # HTTPS and HTTP/2; re-read on SIGHUP
type Config struct {
	Listen     string                 `yaml:"listen"`
	DB         string                 `yaml:"db"`
	DataDir    string                 `yaml:"dataDir"`
	Rings      []RingConfig           `yaml:"rings"`
	Images     map[string]ImageConfig `yaml:"images"`
	Policies   PolicyConfig           `yaml:"policies"`
	Analysis   AnalysisConfig         `yaml:"analysis"`
	Controller ControllerConfig       `yaml:"controller"`
	// ExternalURL is how people reach the server (alert links); flag
	// --external-url and IMAGEGATE_EXTERNAL_URL override it.
	ExternalURL string        `yaml:"externalURL"`
	Alerts      []AlertConfig `yaml:"alerts"`
	Reports     ReportsConfig `yaml:"reports"`
	// TLS serves HTTPS (and HTTP/2) with this pair; flags --tls-cert and
	// --tls-key and IMAGEGATE_TLS_CERT / IMAGEGATE_TLS_KEY override it.
	TLS TLSConfig `yaml:"tls"`
	// Limits bound each token's request rate.
	Limits LimitsConfig `yaml:"limits"`
	// Timeouts bound how long one connection may take over a request.
	Timeouts TimeoutsConfig `yaml:"timeouts"`
}

// TimeoutsConfig are http.Server's timeouts; zero takes the default. They
// keep a slow or stalled client from holding a connection (and its
// goroutine and buffers) for ever.
type TimeoutsConfig struct {
	// ReadHeader bounds reading a request's headers (default 10s).
	ReadHeader time.Duration `yaml:"readHeader"`
	// Read bounds reading a whole request, body included (default 5m: a
	// snapshot of a big image runs to 100 MB).
	Read time.Duration `yaml:"read"`
	// Write bounds writing the response, from the end of the headers
	// read (default 5m).
	Write time.Duration `yaml:"write"`
	// Idle bounds a kept-alive connection between requests (default 2m).
	Idle time.Duration `yaml:"idle"`
}

// Effective returns the timeouts with defaults filled in.
func (t TimeoutsConfig) Effective() TimeoutsConfig {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&t.ReadHeader, 10 * time.Second}, {&t.Read, 5 * time.Minute}, {&t.Write, 5 * time.Minute}, {&t.Idle, 2 * time.Minute}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	return t
}

// LimitsConfig is a token bucket per token (requests per second, bursts
// of up to burst) for the API, and another for resolve and event ingest,
// which runners call once per CI job. A zero value takes the default; a
// negative rate turns that limit off.
type LimitsConfig struct {
	Rate     float64 `yaml:"rate"`     // default 50
	Burst    int     `yaml:"burst"`    // default 100
	HotRate  float64 `yaml:"hotRate"`  // default 200000
	HotBurst int     `yaml:"hotBurst"` // default 400000
}

// Limit defaults: far above what a person or a script does; the runners'
// bucket is above what one replica can answer (about 50,000 resolves a
// second here), so by default it only stops a runaway client.
const (
	DefaultRate     = 50
	DefaultBurst    = 100
	DefaultHotRate  = 200000
	DefaultHotBurst = 400000
)

// Effective returns the limits with defaults filled in; a rate of 0 in
// the result means no limit.
func (l LimitsConfig) Effective() (rate float64, burst int, hotRate float64, hotBurst int) {
	pick := func(r float64, b int, dr float64, db int) (float64, int) {
		switch {
		case r < 0:
			return 0, 0
		case r == 0:
			r = dr
		}
		if b == 0 {
			b = max(db, int(r))
		}
		return r, b
	}
	rate, burst = pick(l.Rate, l.Burst, DefaultRate, DefaultBurst)
	hotRate, hotBurst = pick(l.HotRate, l.HotBurst, DefaultHotRate, DefaultHotBurst)
	return rate, burst, hotRate, hotBurst
}

// TLSConfig names a PEM certificate (chain) and its private key. Both or
// neither: a half-configured pair is refused rather than served as HTTP.
type TLSConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Enabled reports whether the server speaks HTTPS.
func (t TLSConfig) Enabled() bool { return t.Cert != "" }

func (t TLSConfig) validate() error {
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("give both cert and key (--tls-cert and --tls-key), or neither to serve plain HTTP")
	}
	return nil
}

// AlertConfig is one webhook receiving alerts (alert.Target).
type AlertConfig struct {
	URL string `yaml:"url"`
	// Format is json (default), slack or teams.
	Format string `yaml:"format"`
}

// ReportsConfig says when user reports escalate (rollout.ReportPolicy).
type ReportsConfig struct {
	// EscalateOrgs distinct organisations reporting one signature within
	// Window escalate it (default 3).
	EscalateOrgs int `yaml:"escalateOrgs"`
	// Window is how far back reports count (default 24h).
	Window time.Duration `yaml:"window"`
	// Action is halt (default: alert and halt the rollout whose version
	// carries the signature) or alert (alert only).
	Action string `yaml:"action"`
}

// AnalysisConfig is the telemetry decision's policy (rollout.TelemetryHealth):
// zero values take the defaults (alpha 0.001, minOrgs 3, action
// rollback). Rings overrides them by ring name; an override's zero
// values keep the top level's.
type AnalysisConfig struct {
	Alpha   float64                         `yaml:"alpha"`
	MinOrgs int                             `yaml:"minOrgs"`
	Action  string                          `yaml:"action"`
	Rings   map[string]AnalysisPolicyConfig `yaml:"rings"`
}

// AnalysisPolicyConfig is one level of AnalysisConfig.
type AnalysisPolicyConfig struct {
	// Alpha bounds the probability that a ring without a regression is
	// ever failed, however often it is checked.
	Alpha float64 `yaml:"alpha"`
	// MinOrgs is how many distinct orgs a regression must affect.
	MinOrgs int `yaml:"minOrgs"`
	// Action is what a regression does: rollback, halt, or dry-run
	// (decide, record and alert, but do not act).
	Action string `yaml:"action"`
}

// Policies returns the analysis policy as the domain takes it.
func (a AnalysisConfig) Policies() rollout.AnalysisPolicies {
	conv := func(p AnalysisPolicyConfig) rollout.AnalysisPolicy {
		return rollout.AnalysisPolicy{Params: analysis.Params{Alpha: p.Alpha, MinOrgs: p.MinOrgs}, Action: p.Action}
	}
	out := rollout.AnalysisPolicies{Default: conv(AnalysisPolicyConfig{Alpha: a.Alpha, MinOrgs: a.MinOrgs, Action: a.Action})}
	for name, r := range a.Rings {
		if out.Rings == nil {
			out.Rings = map[string]rollout.AnalysisPolicy{}
		}
		out.Rings[name] = conv(r)
	}
	return out
}

// RingConfig is a rollout.Ring with durations written as "24h".
type RingConfig struct {
	Name           string        `yaml:"name"`
	Orgs           []string      `yaml:"orgs"`
	Percent        float64       `yaml:"percent"`
	BakeTime       time.Duration `yaml:"bakeTime"`
	MinJobs        int           `yaml:"minJobs"`
	ControlPercent float64       `yaml:"controlPercent"`
	ManualApproval bool          `yaml:"manualApproval"`
	// NoticePeriod: the rollout enters this ring no earlier than this long
	// after its change notices went out.
	NoticePeriod time.Duration `yaml:"noticePeriod"`
}

// ImageConfig holds the settings of one label.
type ImageConfig struct {
	Rings []RingConfig `yaml:"rings"`
}

// PolicyConfig tunes rollouts.
type PolicyConfig struct {
	// ExpeditedBakeFactor multiplies bake times of hotfix rollouts (default 0.1).
	ExpeditedBakeFactor float64 `yaml:"expeditedBakeFactor"`
	// PinExpiryWarning flags pins that lapse within it (default 72h).
	PinExpiryWarning time.Duration `yaml:"pinExpiryWarning"`
	// MaxFailureRate enables the failure-rate health gate: a ring is
	// unhealthy when the new version fails this much more often (absolute,
	// 0.05 = five points) than the previous one. 0 disables it.
	MaxFailureRate float64 `yaml:"maxFailureRate"`
	// HealthMinJobs is how many finished jobs the failure-rate gate needs
	// before it judges (default 20).
	HealthMinJobs int `yaml:"healthMinJobs"`
	// TokenCacheTTL bounds how long a revoked token keeps working (default 30s).
	TokenCacheTTL time.Duration `yaml:"tokenCacheTTL"`
	// AllowUnknownGate lets a version pushed without a check report roll
	// out without --force; each such rollout says so in its audit entry.
	AllowUnknownGate bool `yaml:"allowUnknownGate"`
}

// ControllerConfig tunes the reconcile loop.
type ControllerConfig struct {
	Interval time.Duration `yaml:"interval"`
	LeaseTTL time.Duration `yaml:"leaseTTL"`
	// Replica names this replica in the controller lease, so that once
	// restarted it takes its own lease back at once instead of waiting
	// for it to expire. It must differ between replicas that run at the
	// same time. Default: host and SQLite file for SQLite (exclusive by a
	// lock file); otherwise host and listening address when the port is
	// fixed (exclusive while bound); host and process id with port 0.
	Replica string `yaml:"replica"`
}

// Parse reads a YAML config strictly (an unknown key is an error, so a typo
// does not silently leave a default in place) and validates it. name is
// used in errors, which are *yamlx.Error values naming the line and the
// path of the offending value.
func Parse(name string, b []byte) (Config, error) {
	var c Config
	top, err := yamlx.Parse(name, b)
	if err != nil {
		return Config{}, err
	}
	if top != nil {
		d := yamlx.NewDecoder(name)
		// yaml's own wording, which the config has always used.
		d.UnknownField = func(key, hint string) string { return "field " + key + " not found" + hint }
		if err := d.Decode(top, &c, ""); err != nil {
			return Config{}, err
		}
	}
	if err := c.validate(name); err != nil {
		return Config{}, err
	}
	return c, nil
}

// validate checks ring plans and policy ranges.
func (c Config) validate(file string) error {
	errAt := func(path, format string, args ...any) error {
		return &yamlx.Error{File: file, Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	if len(c.Rings) > 0 {
		if err := rollout.ValidateRings(RingPlan(c.Rings)); err != nil {
			return errAt("rings", "%v", err)
		}
	}
	for label, img := range c.Images {
		if label == "" {
			return errAt("images", "empty label")
		}
		if len(img.Rings) == 0 {
			return errAt("images."+label, "no rings")
		}
		if err := rollout.ValidateRings(RingPlan(img.Rings)); err != nil {
			return errAt("images."+label+".rings", "%v", err)
		}
	}
	pols := c.Analysis.Policies()
	if err := pols.Default.Validate(); err != nil {
		return errAt("analysis", "%v", err)
	}
	for name := range c.Analysis.Rings {
		if name == "" {
			return errAt("analysis.rings", "empty ring name")
		}
		if err := pols.For(name).Validate(); err != nil {
			return errAt("analysis.rings."+name, "%v", err)
		}
	}
	p := c.Policies
	switch {
	case p.ExpeditedBakeFactor < 0 || p.ExpeditedBakeFactor > 1:
		return errAt("policies.expeditedBakeFactor", "%v: want a factor in (0, 1]", p.ExpeditedBakeFactor)
	case p.MaxFailureRate < 0 || p.MaxFailureRate > 1:
		return errAt("policies.maxFailureRate", "%v: want a share in [0, 1]", p.MaxFailureRate)
	case p.PinExpiryWarning < 0 || p.TokenCacheTTL < 0 || p.HealthMinJobs < 0:
		return errAt("policies", "durations and counts must not be negative")
	case c.Controller.Interval < 0 || c.Controller.LeaseTTL < 0:
		return errAt("controller", "durations must not be negative")
	case c.Controller.LeaseTTL > 0 && c.Controller.Interval >= c.Controller.LeaseTTL:
		return errAt("controller.interval", "%v must be shorter than leaseTTL %v, or the lease lapses between ticks", c.Controller.Interval, c.Controller.LeaseTTL)
	}
	if err := c.TLS.validate(); err != nil {
		return errAt("tls", "%v", err)
	}
	if c.Limits.Burst < 0 || c.Limits.HotBurst < 0 {
		return errAt("limits", "bursts must not be negative")
	}
	if t := c.Timeouts; t.ReadHeader < 0 || t.Read < 0 || t.Write < 0 || t.Idle < 0 {
		return errAt("timeouts", "durations must not be negative")
	}
	return c.validateAlerts(errAt)
}

// validateAlerts checks alerts, externalURL and reports: a target that can
// never be delivered to is refused at start, not found at the first halt.
func (c Config) validateAlerts(errAt func(path, format string, args ...any) error) error {
	seen := map[string]int{}
	for i, t := range c.AlertTargets() {
		path := fmt.Sprintf("alerts[%d]", i)
		if err := t.Validate(); err != nil {
			return errAt(path, "%v", err)
		}
		if j, ok := seen[t.ID()]; ok {
			return errAt(path, "the same target as alerts[%d]", j)
		}
		seen[t.ID()] = i
	}
	if c.ExternalURL != "" {
		if err := CheckExternalURL(c.ExternalURL); err != nil {
			return errAt("externalURL", "%v", err)
		}
	}
	if err := c.ReportPolicy().Validate(); err != nil {
		return errAt("reports", "%v", err)
	}
	return nil
}

// CheckExternalURL refuses an external URL alert links cannot be made
// absolute with.
func CheckExternalURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an absolute http:// or https:// URL such as https://imagegate.example.com", s)
	}
	return nil
}

// AlertTargets are the configured alert receivers.
func (c Config) AlertTargets() []alert.Target {
	out := make([]alert.Target, len(c.Alerts))
	for i, a := range c.Alerts {
		out[i] = alert.Target{URL: a.URL, Format: a.Format}
	}
	return out
}

// ReportPolicy is the configured escalation of user reports; zero values
// mean rollout's defaults.
func (c Config) ReportPolicy() rollout.ReportPolicy {
	r := c.Reports
	return rollout.ReportPolicy{EscalateOrgs: r.EscalateOrgs, Window: r.Window, Action: r.Action}
}

// ApplyEnv overrides listen, db, data dir, external URL and the TLS pair
// from IMAGEGATE_LISTEN, IMAGEGATE_DB, IMAGEGATE_DATA_DIR,
// IMAGEGATE_EXTERNAL_URL, IMAGEGATE_TLS_CERT and IMAGEGATE_TLS_KEY when set.
func (c *Config) ApplyEnv(getenv func(string) string) {
	for _, o := range []struct {
		env string
		dst *string
	}{{"IMAGEGATE_LISTEN", &c.Listen}, {"IMAGEGATE_DB", &c.DB}, {"IMAGEGATE_DATA_DIR", &c.DataDir},
		{"IMAGEGATE_EXTERNAL_URL", &c.ExternalURL}, {"IMAGEGATE_TLS_CERT", &c.TLS.Cert}, {"IMAGEGATE_TLS_KEY", &c.TLS.Key}} {
		if v := getenv(o.env); v != "" {
			*o.dst = v
		}
	}
}

// Flag is a command-line value and whether it was given: a flag's default
// fills a setting only when neither the file nor the environment did.
type Flag struct {
	Value string
	Given bool
}

// Flags are the settings the serve command's flags can override.
type Flags struct {
	Listen, DB, DataDir Flag
	// ExternalURL's default is empty: BaseURL derives one from the
	// listen address.
	ExternalURL Flag
	// TLSCert and TLSKey default to empty (plain HTTP).
	TLSCert, TLSKey Flag
}

// Load reads the config file at path (IMAGEGATE_CONFIG when path is empty;
// no file when both are), then applies the environment and the flags, in
// that order of precedence (last wins).
func Load(path string, getenv func(string) string, flags Flags) (Config, error) {
	if path == "" {
		path = getenv("IMAGEGATE_CONFIG")
	}
	var cfg Config
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if cfg, err = Parse(path, b); err != nil {
			return cfg, err
		}
	}
	cfg.ApplyEnv(getenv)
	for _, o := range []struct {
		flag Flag
		dst  *string
	}{{flags.Listen, &cfg.Listen}, {flags.DB, &cfg.DB}, {flags.DataDir, &cfg.DataDir}, {flags.ExternalURL, &cfg.ExternalURL},
		{flags.TLSCert, &cfg.TLS.Cert}, {flags.TLSKey, &cfg.TLS.Key}} {
		if o.flag.Given || *o.dst == "" {
			*o.dst = o.flag.Value
		}
	}
	if cfg.ExternalURL != "" {
		if err := CheckExternalURL(cfg.ExternalURL); err != nil {
			return cfg, fmt.Errorf("external URL: %w", err)
		}
	}
	if err := cfg.TLS.validate(); err != nil {
		return cfg, fmt.Errorf("tls: %w", err)
	}
	return cfg, nil
}

// BaseURL is the URL alert links start with: ExternalURL, else the
// address the server listens on (addr, host:port as net.Listener.Addr
// gives it, an unspecified host made loopback so a link opens on this
// machine at least).
func (c Config) BaseURL(addr string) string {
	if c.ExternalURL != "" {
		return strings.TrimSuffix(c.ExternalURL, "/")
	}
	scheme := "http://"
	if c.TLS.Enabled() {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return scheme + net.JoinHostPort(host, port)
}

// RingPlan converts configured rings to the domain's.
func RingPlan(rs []RingConfig) []rollout.Ring {
	out := make([]rollout.Ring, len(rs))
	for i, r := range rs {
		out[i] = rollout.Ring{Name: r.Name, Orgs: r.Orgs, Percent: r.Percent, BakeTime: r.BakeTime, MinJobs: r.MinJobs,
			ControlPercent: r.ControlPercent, ManualApproval: r.ManualApproval, NoticePeriod: r.NoticePeriod}
	}
	return out
}

// RingPlans are the configured plans keyed by label ("" = the global plan,
// present only when the file gives one), as rollout.Service.ApplyConfigRings
// takes them.
func (c Config) RingPlans() map[string][]rollout.Ring {
	plans := map[string][]rollout.Ring{}
	if len(c.Rings) > 0 {
		plans[""] = RingPlan(c.Rings)
	}
	for label, img := range c.Images {
		plans[label] = RingPlan(img.Rings)
	}
	return plans
}
