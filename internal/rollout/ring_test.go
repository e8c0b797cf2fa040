package rollout_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

func threeRings() []rollout.Ring {
	return []rollout.Ring{
		{Name: "canary", Orgs: []string{"org-internal", "org-dogfood"}, BakeTime: time.Hour, MinJobs: 3},
		{Name: "early", Percent: 10, BakeTime: 2 * time.Hour, MinJobs: 3, ControlPercent: 20},
		{Name: "everyone", Percent: 100, BakeTime: 4 * time.Hour, MinJobs: 3},
	}
}

func TestRingOf(t *testing.T) {
	rings := threeRings()
	counts := make([]int, len(rings))
	control := 0
	const n = 20000
	for i := range n {
		org := fmt.Sprintf("org-%d", i)
		r := rollout.RingOf(rings, org)
		if r != rollout.RingOf(rings, org) {
			t.Fatalf("RingOf(%s) is not stable", org)
		}
		if r == 0 {
			t.Fatalf("%s is not named in ring 0 but landed there", org)
		}
		counts[r]++
		if r == 1 && rollout.InControl(rings[1], org) {
			control++
		}
	}
	// 10% of orgs in ring 1, 20% of those in its control share: allow
	// five standard deviations of a binomial.
	within := func(name string, got int, total int, p float64) {
		t.Helper()
		want := float64(total) * p
		sd := math.Sqrt(float64(total) * p * (1 - p))
		if math.Abs(float64(got)-want) > 5*sd {
			t.Errorf("%s: %d of %d, want about %.0f", name, got, total, want)
		}
	}
	within("ring 1", counts[1], n, 0.10)
	within("control share of ring 1", control, counts[1], 0.20)

	for _, tc := range []struct {
		org  string
		want int
	}{
		{"org-internal", 0},
		{"org-dogfood", 0},
	} {
		if got := rollout.RingOf(rings, tc.org); got != tc.want {
			t.Errorf("RingOf(%s) = %d, want %d", tc.org, got, tc.want)
		}
	}
	if got := rollout.RingOf(nil, "org-1"); got != -1 {
		t.Errorf("RingOf(no rings) = %d, want -1", got)
	}
	// Widening a later ring only moves orgs into it from later rings: an
	// org stays in its ring across plan changes that do not touch it.
	wider := threeRings()
	wider[1].Percent = 30
	for i := range 2000 {
		org := fmt.Sprintf("org-%d", i)
		if rollout.RingOf(rings, org) == 1 && rollout.RingOf(wider, org) != 1 {
			t.Fatalf("%s left ring 1 when ring 1 grew", org)
		}
	}
}

func TestHashPercentFixed(t *testing.T) {
	// Pinned values (FNV-1a 64 of salt+org, mod 10000, computed
	// independently): changing the hash would move every org to another
	// ring, so it must never change silently.
	for _, tc := range []struct {
		org           string
		ring, control float64
	}{
		{"org-1", 89.16, 28.11},
		{"acme", 14.26, 51.55},
		{"github", 46.59, 6.86},
	} {
		ring, control := rollout.HashPercent("imagegate/ring\x00", tc.org), rollout.HashPercent("imagegate/control\x00", tc.org)
		if ring != tc.ring || control != tc.control {
			t.Errorf("HashPercent(%q) = %v, %v; want %v, %v", tc.org, ring, control, tc.ring, tc.control)
		}
	}
	rings := []rollout.Ring{{Name: "a", Percent: 14.27}, {Name: "b", Percent: 100, ControlPercent: 6.87}}
	if got := rollout.RingOf(rings, "acme"); got != 0 {
		t.Errorf("RingOf(acme) = %d, want 0 (hash 14.26 < 14.27)", got)
	}
	if !rollout.InControl(rings[1], "github") || rollout.InControl(rings[1], "org-1") {
		t.Errorf("InControl: want github (6.86) in, org-1 (28.11) out of a 6.87%% control share")
	}
}

func TestValidateRings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func([]rollout.Ring) []rollout.Ring
		valid bool
	}{
		{"ok", func(r []rollout.Ring) []rollout.Ring { return r }, true},
		{"empty", func([]rollout.Ring) []rollout.Ring { return nil }, false},
		{"last not everyone", func(r []rollout.Ring) []rollout.Ring { r[2].Percent = 90; return r }, false},
		{"percent decreases", func(r []rollout.Ring) []rollout.Ring {
			r[1].Percent = 50
			r = append(r[:2], rollout.Ring{Name: "x", Percent: 40}, r[2])
			return r
		}, false},
		{"duplicate name", func(r []rollout.Ring) []rollout.Ring { r[1].Name = "canary"; return r }, false},
		{"no name", func(r []rollout.Ring) []rollout.Ring { r[1].Name = ""; return r }, false},
		{"control 100", func(r []rollout.Ring) []rollout.Ring { r[1].ControlPercent = 100; return r }, false},
		{"negative bake", func(r []rollout.Ring) []rollout.Ring { r[0].BakeTime = -time.Second; return r }, false},
		{"NaN percent", func(r []rollout.Ring) []rollout.Ring { r[1].Percent = math.NaN(); return r }, false},
		{"one ring", func([]rollout.Ring) []rollout.Ring { return []rollout.Ring{{Name: "all", Percent: 100}} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rollout.ValidateRings(tc.mod(threeRings()))
			if tc.valid && err != nil {
				t.Fatalf("ValidateRings: %v", err)
			}
			if !tc.valid && !errors.Is(err, rollout.ErrInvalid) {
				t.Fatalf("ValidateRings = %v, want ErrInvalid", err)
			}
		})
	}
}
