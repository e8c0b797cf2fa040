package rollout_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

func TestPrepareRollout(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := &rollout.Rollout{ID: "r-1", Label: "img", Version: "v1", State: rollout.StateBaking, Revision: 4}
	tests := []struct {
		name      string
		r         rollout.Rollout
		supersede *rollout.Rollout
		want      rollout.Rollout
	}{
		{"updated defaults to created", rollout.Rollout{Label: "img", Version: "v2", CreatedAt: t0, Revision: 7},
			nil, rollout.Rollout{Label: "img", Version: "v2", CreatedAt: t0, UpdatedAt: t0, Revision: 1}},
		{"names the superseded", rollout.Rollout{Label: "img", Version: "v2", CreatedAt: t0, UpdatedAt: t0.Add(time.Second)},
			old, rollout.Rollout{Label: "img", Version: "v2", CreatedAt: t0, UpdatedAt: t0.Add(time.Second), Supersedes: "r-1", Revision: 1}},
		{"keeps a given supersedes", rollout.Rollout{Label: "img", Version: "v2", CreatedAt: t0, Supersedes: "r-0"},
			old, rollout.Rollout{Label: "img", Version: "v2", CreatedAt: t0, UpdatedAt: t0, Supersedes: "r-0", Revision: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rollout.PrepareRollout(tt.r, tt.supersede)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("PrepareRollout (-want +got):\n%s", d)
			}
		})
	}
	if _, err := rollout.PrepareRollout(rollout.Rollout{Label: "img"}, nil); !errors.Is(err, rollout.ErrInvalid) {
		t.Errorf("PrepareRollout without a version: %v, want ErrInvalid", err)
	}
	before := time.Now()
	if got, _ := rollout.PrepareRollout(rollout.Rollout{Label: "img", Version: "v2"}, nil); got.CreatedAt.Before(before) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("PrepareRollout without times: created %v, updated %v; want now, twice", got.CreatedAt, got.UpdatedAt)
	}

	sup := rollout.Superseded(*old, rollout.Rollout{UpdatedAt: t0})
	if sup.State != rollout.StateSuperseded || !sup.UpdatedAt.Equal(t0) || sup.Revision != 4 {
		t.Errorf("Superseded = %s at %v, revision %d; want superseded at %v, revision still 4", sup.State, sup.UpdatedAt, sup.Revision, t0)
	}
	if got := rollout.RolloutID(12); got != "r-12" {
		t.Errorf("RolloutID(12) = %q, want r-12", got)
	}
	stored := rollout.AsStored(rollout.Rollout{CreatedAt: t0.Add(1500 * time.Nanosecond)})
	if !stored.CreatedAt.Equal(t0.Add(time.Microsecond)) {
		t.Errorf("AsStored kept %v, want microseconds", stored.CreatedAt)
	}
	if got := rollout.RunsExpired(t0); !got.Equal(t0.Add(-rollout.RunRetention)) {
		t.Errorf("RunsExpired(%v) = %v", t0, got)
	}
}
