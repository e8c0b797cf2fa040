package rollout

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
)

// Salts keep the ring hash and the control-share hash independent, so the
// control share of a ring is an unbiased sample of its orgs.
const (
	ringSalt    = "imagegate/ring\x00"
	controlSalt = "imagegate/control\x00"
)

// HashPercent maps org to [0,100) with two decimals by FNV-1a 64 of a salted
// org id. It never changes for a given org, so an org stays in its ring
// across rollouts and across releases of imagegate.
func HashPercent(salt, org string) float64 {
	h := fnv.New64a()
	h.Write([]byte(salt))
	h.Write([]byte(org))
	return float64(h.Sum64()%10000) / 100
}

// RingOf returns the index of the ring org belongs to: the first ring that
// names it in Orgs, else the first ring whose cumulative Percent exceeds the
// org's stable hash; the last ring takes everyone left. -1 when rings is
// empty.
func RingOf(rings []Ring, org string) int {
	if len(rings) == 0 {
		return -1
	}
	for i := range rings {
		if slices.Contains(rings[i].Orgs, org) {
			return i
		}
	}
	h := HashPercent(ringSalt, org)
	for i := range rings {
		if h < rings[i].Percent {
			return i
		}
	}
	return len(rings) - 1
}

// InControl reports whether org is in ring's control share: held on the
// previous version while the ring bakes.
func InControl(ring Ring, org string) bool {
	return ring.ControlPercent > 0 && HashPercent(controlSalt, org) < ring.ControlPercent
}

// ValidateRings checks a ring plan; the error says what to fix.
func ValidateRings(rings []Ring) error {
	if len(rings) == 0 {
		return fmt.Errorf("ring plan is empty: give at least one ring (the last covers everyone): %w", ErrInvalid)
	}
	names := map[string]bool{}
	prev := 0.0
	for i, r := range rings {
		if r.Name == "" {
			return fmt.Errorf("ring %d has no name: %w", i, ErrInvalid)
		}
		if err := CheckName(fmt.Sprintf("ring %d name", i), r.Name); err != nil {
			return err
		}
		for j, org := range r.Orgs {
			if err := CheckName(fmt.Sprintf("ring %q orgs[%d]", r.Name, j), org); err != nil {
				return err
			}
		}
		if names[r.Name] {
			return fmt.Errorf("ring name %q used twice: %w", r.Name, ErrInvalid)
		}
		names[r.Name] = true
		if math.IsNaN(r.Percent) || r.Percent < 0 || r.Percent > 100 {
			return fmt.Errorf("ring %q: percent %v is outside [0,100]: %w", r.Name, r.Percent, ErrInvalid)
		}
		if r.Percent < prev {
			return fmt.Errorf("ring %q: percent %v is below the previous ring's %v; percents are cumulative: %w", r.Name, r.Percent, prev, ErrInvalid)
		}
		prev = r.Percent
		if math.IsNaN(r.ControlPercent) || r.ControlPercent < 0 || r.ControlPercent >= 100 {
			return fmt.Errorf("ring %q: controlPercent %v is outside [0,100): %w", r.Name, r.ControlPercent, ErrInvalid)
		}
		if r.BakeTime < 0 || r.MinJobs < 0 {
			return fmt.Errorf("ring %q: bakeTime and minJobs must not be negative: %w", r.Name, ErrInvalid)
		}
	}
	if last := rings[len(rings)-1]; last.Percent != 100 {
		return fmt.Errorf("last ring %q has percent %v: the last ring must cover everyone (100): %w", last.Name, last.Percent, ErrInvalid)
	}
	return nil
}
