package config_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/config"
	"github.com/imagegate/imagegate/internal/rollout"
)

// FuzzParseConfig: no input panics, and an accepted config has valid
// ring plans.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("listen: :8080\nrings:\n  - {name: canary, orgs: [a], bakeTime: 2h}\n  - {name: all, percent: 100}\n"))
	f.Add([]byte("policies: {maxFailureRate: 0.05, pinExpiryWarning: 72h}\ncontroller: {interval: 1s, leaseTTL: 10s}\n"))
	f.Add([]byte("images:\n  u: {rings: [{name: x, percent: 100}]}\n"))
	f.Add([]byte("rings: [{name: a, percent: 50}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Parse("fuzz.yaml", b)
		if err != nil {
			return
		}
		if len(c.Rings) > 0 {
			if err := rollout.ValidateRings(config.RingPlan(c.Rings)); err != nil {
				t.Fatalf("accepted invalid global rings: %v", err)
			}
		}
		for l, img := range c.Images {
			if err := rollout.ValidateRings(config.RingPlan(img.Rings)); err != nil {
				t.Fatalf("accepted invalid rings of %s: %v", l, err)
			}
		}
	})
}
