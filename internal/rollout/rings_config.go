package rollout

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// ConfigActor is the audit actor of changes made from the serve config.
const ConfigActor = "config"

// ApplyConfigRings stores the ring plans of the serve config, keyed by label
// ("" = the global plan), where they differ from the stored ones, so that
// restarting with the same file changes nothing and writes no audit entry.
// A label without a plan of its own is compared with the global plan, as
// GetRings falls back to it. Plans are applied in label order, the global
// one first.
//
// Precedence: the config wins. A plan it names is applied at every start
// and is managed by the config from then on: SetRings through the API
// refuses to change it (ErrConflict naming the file's key), so an edit
// made through the API is never silently undone by the next restart.
// Plans the config does not name are the API's.
func (s *Service) ApplyConfigRings(ctx context.Context, plans map[string][]Ring) error {
	managed := make(map[string]bool, len(plans))
	for label := range plans {
		managed[label] = true
	}
	s.configRings.Store(&managed)
	for _, label := range slices.Sorted(maps.Keys(plans)) {
		rings := plans[label]
		cur, err := s.st.GetRings(ctx, label)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("read ring plan: %w", err)
		}
		if err == nil && reflect.DeepEqual(normRings(cur), normRings(rings)) {
			continue
		}
		if err := s.setRings(ctx, ConfigActor, label, rings); err != nil {
			return fmt.Errorf("apply ring plan %q from the config: %w", label, err)
		}
	}
	return nil
}

// normRings treats an empty org list as none: a store may read back either.
func normRings(rs []Ring) []Ring {
	out := make([]Ring, len(rs))
	for i, r := range rs {
		if len(r.Orgs) == 0 {
			r.Orgs = nil
		}
		out[i] = r
	}
	return out
}

// managedByConfig says whether the serve config names label's plan ("" =
// the global plan).
func (s *Service) managedByConfig(label string) bool {
	m := s.configRings.Load()
	return m != nil && (*m)[label]
}
