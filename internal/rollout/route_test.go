package rollout_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/rollout"
)

// orgIn finds an org of ring (and in or out of its control share).
func orgIn(t testing.TB, rings []rollout.Ring, ring int, control bool) string {
	t.Helper()
	for i := range 100000 {
		org := fmt.Sprintf("org-%d", i)
		if rollout.RingOf(rings, org) == ring && rollout.InControl(rings[ring], org) == control {
			return org
		}
	}
	t.Fatalf("no org in ring %d (control %v)", ring, control)
	return ""
}

func TestRouteDecide(t *testing.T) {
	rings := threeRings()
	r0, r1, r1c, r2 := "org-internal", orgIn(t, rings, 1, false), orgIn(t, rings, 1, true), orgIn(t, rings, 2, false)
	active := baking(1, t0)
	pending := baking(0, time.Time{})
	pending.State = rollout.StatePending
	halted := baking(1, t0)
	halted.State = rollout.StateHalted
	route := func(a *rollout.Rollout, mod func(*rollout.Route)) *rollout.Route {
		rt := &rollout.Route{Label: "ubuntu-22.04", Default: "v1", Active: a, Rings: rings,
			Pins: map[string]rollout.Pin{}, Revoked: map[string]string{}, TakenBack: map[string]bool{}}
		if mod != nil {
			mod(rt)
		}
		return rt
	}
	pin := func(org, v string, exp time.Time, override bool) func(*rollout.Route) {
		return func(rt *rollout.Route) {
			rt.Pins[org] = rollout.Pin{Org: org, Label: rt.Label, Version: v, Owner: "alice", Reason: "bisecting", ExpiresAt: exp, OverrideRevoked: override}
		}
	}
	revoke := func(v string) func(*rollout.Route) {
		return func(rt *rollout.Route) { rt.Revoked[v] = "CVE-2026-1" }
	}
	type want struct {
		Version, Reason string
		Ring            int
	}
	for _, tc := range []struct {
		name string
		rt   *rollout.Route
		org  string
		want want
	}{
		{"no rollout: default", route(nil, nil), r2, want{"v1", "default", 2}},
		{"ring 0 passed", route(&active, nil), r0, want{"v2", "rollout", 0}},
		{"current ring", route(&active, nil), r1, want{"v2", "rollout", 1}},
		{"control share of current ring", route(&active, nil), r1c, want{"v1", "control", 1}},
		{"ring not reached", route(&active, nil), r2, want{"v1", "default", 2}},
		{"pending serves old", route(&pending, nil), r0, want{"v1", "default", 0}},
		{"halted keeps reached rings", route(&halted, nil), r0, want{"v2", "rollout", 0}},
		{"halted keeps unreached on old", route(&halted, nil), r2, want{"v1", "default", 2}},
		{"pin wins", route(&active, pin(r0, "v0", t0.Add(time.Hour), false)), r0, want{"v0", "pin", 0}},
		{"expired pin ignored", route(&active, pin(r0, "v0", t0, false)), r0, want{"v2", "rollout", 0}},
		{"pin to revoked ignored", route(&active, func(rt *rollout.Route) { pin(r0, "v0", t0.Add(time.Hour), false)(rt); revoke("v0")(rt) }), r0, want{"v2", "rollout", 0}},
		{"pin overriding revocation", route(&active, func(rt *rollout.Route) { pin(r0, "v0", t0.Add(time.Hour), true)(rt); revoke("v0")(rt) }), r0, want{"v0", "pin", 0}},
		{"revoked new version serves old", route(&active, revoke("v2")), r0, want{"v1", "default", 0}},
		{"revoked old version serves default", route(&active, func(rt *rollout.Route) { revoke("v1")(rt); rt.Default = "v0" }), r2, want{"v0", "default", 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.rt.Decide(tc.org, t0)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, want{res.Version, res.Reason, res.Ring}); d != "" {
				t.Errorf("Decide(%s) (-want +got):\n%s\ndetail: %s", tc.org, d, res.Detail)
			}
			if res.Detail == "" || res.Label != "ubuntu-22.04" {
				t.Errorf("Decide gave %+v: want label and detail", res)
			}
		})
	}
	t.Run("rollout without rings serves the old version", func(t *testing.T) {
		broken := baking(0, t0)
		broken.Rings = nil
		res, err := route(&broken, func(rt *rollout.Route) { rt.Rings = nil }).Decide(r0, t0)
		if err != nil || res.Version != "v1" {
			t.Fatalf("Decide = %+v, %v; want v1", res, err)
		}
	})
	t.Run("nothing servable", func(t *testing.T) {
		_, err := route(nil, func(rt *rollout.Route) { rt.Default = "" }).Decide(r0, t0)
		if !errors.Is(err, rollout.ErrNotFound) {
			t.Fatalf("Decide = %v, want ErrNotFound", err)
		}
	})
}
