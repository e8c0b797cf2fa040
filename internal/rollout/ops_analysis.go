package rollout

import (
	"context"
	"fmt"
)

// RolloutAnalysis is a rollout's telemetry analysis, ring by ring.
type RolloutAnalysis struct {
	Rollout Rollout        `json:"rollout"`
	Rings   []RingAnalysis `json:"rings"`
}

// Analysis analyses every ring rollout id has entered, as the health gate
// would decide it now (ServiceOptions.Analyzer); ErrPrecondition when the
// Service has none, ErrNotFound for an unknown rollout.
func (s *Service) Analysis(ctx context.Context, id string) (RolloutAnalysis, error) {
	if s.opts.Analyzer == nil {
		return RolloutAnalysis{}, fmt.Errorf("analysis of rollout %s: telemetry analysis is not configured on this server: %w", id, ErrPrecondition)
	}
	r, err := s.st.GetRollout(ctx, id)
	if err != nil {
		return RolloutAnalysis{}, errWrap(err, "rollout %s", id)
	}
	stages, err := s.st.RolloutStages(ctx, id)
	if err != nil {
		return RolloutAnalysis{}, errWrap(err, "stages of rollout %s", id)
	}
	out := RolloutAnalysis{Rollout: r, Rings: []RingAnalysis{}}
	for _, st := range stages {
		if st.Ring < 0 || st.Ring >= len(r.Rings) {
			continue
		}
		a, err := s.opts.Analyzer.AnalyzeRing(ctx, r, st.Ring)
		if err != nil {
			return RolloutAnalysis{}, err
		}
		out.Rings = append(out.Rings, a)
	}
	return out, nil
}
