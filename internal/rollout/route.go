package rollout

import (
	"fmt"
	"time"
)

// Route is everything Resolve needs about one label: the routing table the
// Service loads from the store and never modifies once published, so
// resolves read it without locks.
type Route struct {
	Label string
	// Default is the newest completed version that is not revoked ("" when
	// none): what everyone gets when no rollout is under way.
	Default string
	// Active is the label's rollout that is pending, baking, paused or
	// halted; nil when none.
	Active *Rollout
	// Rings is Active's plan, else the last completed rollout's, so
	// resolutions and served counts carry the org's ring either way.
	Rings []Ring
	Pins  map[string]Pin // by org
	// Revoked maps revoked versions to their reason.
	Revoked map[string]string
	// TakenBack holds versions a run must not keep by affinity: revoked
	// ones and those of rollouts that were rolled back.
	TakenBack map[string]bool
}

// oldVersion is what orgs not (yet) on the active rollout get: its
// FromVersion, unless that was revoked meanwhile.
func (rt *Route) oldVersion(r *Rollout) string {
	if _, bad := rt.Revoked[r.FromVersion]; !bad && r.FromVersion != "" {
		return r.FromVersion
	}
	return rt.Default
}

// Decide answers a resolve from the route alone (pin, rollout, default);
// run affinity is layered on top by the Service because it needs the
// store for runs it has not seen. now decides pin expiry. The error wraps
// ErrNotFound when the label has nothing servable.
func (rt *Route) Decide(org string, now time.Time) (Resolution, error) {
	ring := RingOf(rt.Rings, org)
	if p, ok := rt.Pins[org]; ok && now.Before(p.ExpiresAt) {
		reason, revoked := rt.Revoked[p.Version]
		switch {
		case !revoked:
			return Resolution{Label: rt.Label, Version: p.Version, Reason: "pin", Ring: ring,
				Detail: fmt.Sprintf("pinned by %s until %s: %s", p.Owner, p.ExpiresAt.UTC().Format(time.RFC3339), p.Reason)}, nil
		case p.OverrideRevoked:
			return Resolution{Label: rt.Label, Version: p.Version, Reason: "pin", Ring: ring,
				Detail: fmt.Sprintf("pinned by %s until %s: %s; version is REVOKED (%s), pin overrides the revocation", p.Owner, p.ExpiresAt.UTC().Format(time.RFC3339), p.Reason, reason)}, nil
		}
		// A pin to a revoked version without override no longer applies.
	}
	if r := rt.Active; r != nil {
		old := rt.oldVersion(r)
		_, newRevoked := rt.Revoked[r.Version]
		res := Resolution{Label: rt.Label, RolloutID: r.ID, Ring: ring}
		switch {
		case r.State == StatePending || newRevoked || ring < 0 || r.Ring >= len(r.Rings):
			res.Version, res.Reason = old, "default"
			res.Detail = fmt.Sprintf("rollout %s of %s has not started", r.ID, r.Version)
		case ring < r.Ring:
			res.Version, res.Reason = r.Version, "rollout"
			res.Detail = fmt.Sprintf("ring %d (%s) of rollout %s, which is %s in ring %d", ring, rt.Rings[ring].Name, r.ID, r.State, r.Ring)
		case ring == r.Ring && InControl(r.Rings[ring], org):
			res.Version, res.Reason = old, "control"
			res.Detail = fmt.Sprintf("control share of ring %d (%s) of rollout %s: stays on %s until the ring is left", ring, rt.Rings[ring].Name, r.ID, old)
		case ring == r.Ring:
			res.Version, res.Reason = r.Version, "rollout"
			res.Detail = fmt.Sprintf("ring %d (%s) of rollout %s, %s", ring, rt.Rings[ring].Name, r.ID, r.State)
		default:
			res.Version, res.Reason = old, "default"
			res.Detail = fmt.Sprintf("ring %d not reached yet by rollout %s (%s in ring %d)", ring, r.ID, r.State, r.Ring)
		}
		if res.Version == "" {
			return Resolution{}, fmt.Errorf("resolve %s: no servable version (rollout %s has no previous version that is not revoked): %w", rt.Label, r.ID, ErrNotFound)
		}
		return res, nil
	}
	if rt.Default == "" {
		return Resolution{}, fmt.Errorf("resolve %s: no version has completed a rollout (or all were revoked); start a rollout: %w", rt.Label, ErrNotFound)
	}
	return Resolution{Label: rt.Label, Version: rt.Default, Reason: "default", Ring: ring, Detail: "last completed rollout"}, nil
}
