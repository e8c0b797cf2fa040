package rollout

import (
	"context"
	"fmt"
	"time"
)

// RingTrend is a ring's failure rates over time, on the rollout's new
// version and on the old version (control share and the rest of the
// fleet, as the analysis compares them): what the Rollout page draws.
type RingTrend struct {
	Ring int `json:"ring"`
	// Bucket is the width of each point: an hour, or more for a ring that
	// ran long enough to need more than MaxTrendPoints hours.
	Bucket  time.Duration `json:"-"`
	Buckets []RingBucket  `json:"buckets"`
}

// RingBucket is one point of a RingTrend, from Start for the trend's
// Bucket; zeros included, so gaps show.
type RingBucket struct {
	Start time.Time `json:"start"`
	New   JobCount  `json:"new"`
	Old   JobCount  `json:"old"`
}

// JobCount is jobs and how many of them failed.
type JobCount struct {
	Jobs   int64 `json:"jobs"`
	Failed int64 `json:"failed"`
}

// MaxTrendPoints bounds a RingTrend's buckets: a ring that baked a week
// is drawn in 7 daily points rather than 168 hourly ones.
const MaxTrendPoints = 48

// trendWidths are the bucket widths a RingTrend picks from, the
// narrowest that fits: each divides a day, so buckets start at round
// hours.
var trendWidths = []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// RingTrend returns the failure rates of rollout id's ring over time,
// from the hour the ring started to the hour it was left (the next ring
// started, the rollout ended; now while it is in the ring), widened to
// every hour with jobs. ErrNotFound for an unknown rollout; a ring
// the rollout has not entered has no buckets.
func (s *Service) RingTrend(ctx context.Context, id string, ring int) (RingTrend, error) {
	if ring < 0 {
		return RingTrend{}, fmt.Errorf("trend of rollout %s: ring %d: %w", id, ring, ErrInvalid)
	}
	r, err := s.st.GetRollout(ctx, id)
	if err != nil {
		return RingTrend{}, errWrap(err, "rollout %s", id)
	}
	stages, err := s.st.RolloutStages(ctx, id)
	if err != nil {
		return RingTrend{}, errWrap(err, "stages of rollout %s", id)
	}
	out := RingTrend{Ring: ring, Bucket: time.Hour, Buckets: []RingBucket{}}
	// The ring's span: from its start to the next ring's (jobs after it
	// count there), to the rollout's end, or to now.
	var started, left time.Time
	for i, st := range stages {
		if st.Ring == ring {
			started = st.StartedAt
			if i+1 < len(stages) {
				left = stages[i+1].StartedAt
			}
		}
	}
	if started.IsZero() {
		return out, nil
	}
	hours, err := s.st.RingHours(ctx, id, ring)
	if err != nil {
		return RingTrend{}, errWrap(err, "hours of rollout %s in ring %d", id, ring)
	}
	start := started.UTC().Truncate(time.Hour)
	end := start
	switch {
	case !left.IsZero():
		end = maxT(end, left.UTC().Truncate(time.Hour))
	case r.Ring == ring && isActive(r.State):
		end = maxT(end, s.clock.Now().UTC().Truncate(time.Hour))
	case r.Ring == ring:
		end = maxT(end, r.UpdatedAt.UTC().Truncate(time.Hour))
	}
	for _, h := range hours {
		// A job may start before its ring did (it is placed by its
		// rollout's ring at the time, late reports included): widen.
		start, end = minT(start, h.Hour), maxT(end, h.Hour)
	}
	span := end.Sub(start) + time.Hour
	for _, w := range trendWidths {
		out.Bucket = w
		if span <= w*MaxTrendPoints {
			break
		}
	}
	if span > out.Bucket*MaxTrendPoints {
		// Longer than the widest buckets hold: keep the newest.
		start = end.Truncate(out.Bucket).Add(-out.Bucket * (MaxTrendPoints - 1))
	}
	start = start.Truncate(out.Bucket)
	n := int(end.Sub(start)/out.Bucket) + 1
	out.Buckets = make([]RingBucket, n)
	for i := range out.Buckets {
		out.Buckets[i].Start = start.Add(time.Duration(i) * out.Bucket)
	}
	for _, h := range hours {
		if h.Hour.Before(start) {
			continue
		}
		b := &out.Buckets[int(h.Hour.Sub(start)/out.Bucket)]
		switch h.Cohort {
		case CohortNew:
			b.New.Jobs += h.Jobs
			b.New.Failed += h.Failed
		case CohortControl, CohortOld:
			b.Old.Jobs += h.Jobs
			b.Old.Failed += h.Failed
		}
	}
	return out, nil
}

func minT(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxT(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
