package rollout_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

// TestResolutions: what Resolutions tells an org is what Resolve answers
// it (pin, ring, control share, default), an unknown image says why it
// serves nothing, and looking is not counted as served.
func TestResolutions(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{})
	o := orgs(t)
	e.setup(label, threeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	_, err := e.svc.SetPin(e.ctx, "test", rollout.Pin{Org: o.r2, Label: label, Version: "v1", Reason: "waits", ExpiresAt: e.clock.Now().Add(time.Hour)})
	e.must(err)
	for _, org := range []string{o.r0, o.r1, o.r1c, o.r2} {
		want := []rollout.Resolution{e.resolve(org, label, ""),
			{Label: "missing", Reason: rollout.ReasonNone, Ring: -1, Detail: `image "missing" is not registered`}}
		for range 3 {
			got, err := e.svc.Resolutions(org, []string{label, "missing"})
			e.must(err)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("Resolutions(%s) (-Resolve +got):\n%s", org, d)
			}
		}
	}
	e.must(e.svc.Flush(e.ctx))
	st, err := e.svc.Status(e.ctx, label)
	e.must(err)
	var served int64
	for _, ring := range st.Rings {
		for _, n := range ring.Served {
			served += n
		}
	}
	// The four Resolve calls alone.
	if served != 4 {
		t.Errorf("served counts total %d after 4 resolves and 12 looks", served)
	}
	if _, err := e.svc.Resolutions("", []string{label}); err == nil {
		t.Error("Resolutions without an org succeeded")
	} else {
		wantErr(t, err, rollout.ErrInvalid)
	}
}
