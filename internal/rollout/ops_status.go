package rollout

import (
	"context"
	"fmt"
	"time"
)

// RingStatus is one ring of a rollout as intended and as observed.
type RingStatus struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	Intended string `json:"intended"`
	// Control is the version the ring's control share gets, when it has
	// one now.
	Control string `json:"control,omitempty"`
	// Served counts resolves answered per version in this ring since the
	// rollout started.
	Served map[string]int64 `json:"served"`
}

// LabelStatus is what a label serves: intended and observed.
type LabelStatus struct {
	Label string `json:"label"`
	// Default is the last completed version that is not revoked.
	Default string `json:"default"`
	// Rollout is the active rollout, else the newest one; nil when none.
	Rollout *Rollout     `json:"rollout,omitempty"`
	Rings   []RingStatus `json:"rings,omitempty"`
	// Waiting says why the controller holds an active rollout where it is.
	Waiting string `json:"waiting,omitempty"`
	// OldServed counts resolves not by pin that returned the rollout's
	// FromVersion since ObservedSince (whole minutes after completion,
	// once counts of before completion are flushed).
	OldServed     int64     `json:"oldServed"`
	ObservedSince time.Time `json:"observedSince,omitzero"`
	// FullyServed: the rollout completed and no one but pinned orgs has
	// been given the old version since ObservedSince.
	FullyServed bool `json:"fullyServed"`
}

// Status reports label's current rollout: per ring the intended version
// and the versions actually served since the rollout started (this
// replica's counts flushed first). A read must answer while writes fail
// (a full disk): then the counts not yet flushed are left out, and kept
// for the next flush.
func (s *Service) Status(ctx context.Context, label string) (LabelStatus, error) {
	if err := s.Flush(ctx); err != nil {
		s.log.Warn("status without this replica's latest served counts", "label", label, "err", err)
	}
	if err := s.refresh(ctx); err != nil {
		return LabelStatus{}, err
	}
	rt := s.table.Load().routes[label]
	if rt == nil {
		return LabelStatus{}, fmt.Errorf("status: image %q is not registered: %w", label, ErrNotFound)
	}
	st := LabelStatus{Label: label, Default: rt.Default}
	var r Rollout
	if rt.Active != nil {
		r = *rt.Active
	} else {
		rs, _, err := s.st.ListRollouts(ctx, label, nil, Page{Limit: 1})
		if err != nil {
			return st, errWrap(err, "status of %s", label)
		}
		if len(rs) == 0 {
			return st, nil
		}
		r = rs[0]
	}
	st.Rollout = &r
	served, err := s.st.ServedSince(ctx, label, r.CreatedAt.UTC().Truncate(time.Minute))
	if err != nil {
		return st, errWrap(err, "served counts of %s", label)
	}
	for i, ring := range r.Rings {
		rs := RingStatus{Index: i, Name: ring.Name, Served: map[string]int64{}}
		switch {
		case r.State == StateCompleted || (isActive(r.State) && r.State != StatePending && i < r.Ring):
			rs.Intended = r.Version
		case isActive(r.State) && r.State != StatePending && i == r.Ring:
			rs.Intended = r.Version
			if ring.ControlPercent > 0 {
				rs.Control = rt.oldVersion(&r)
			}
		default:
			rs.Intended = rt.Default
		}
		for _, sv := range served {
			if sv.Ring == i {
				rs.Served[sv.Version] += sv.Count
			}
		}
		st.Rings = append(st.Rings, rs)
	}
	if isActive(r.State) {
		in, err := s.gateInput(ctx, r)
		if err != nil {
			return st, err
		}
		if _, action, why := Step(r, in); action == "" {
			st.Waiting = why
		} else {
			st.Waiting = "due: " + why
		}
	}
	if r.State == StateCompleted && r.FromVersion != "" {
		st.ObservedSince = r.UpdatedAt.UTC().Add(s.opts.FlushInterval).Truncate(time.Minute).Add(time.Minute)
		since, err := s.st.ServedSince(ctx, label, st.ObservedSince)
		if err != nil {
			return st, errWrap(err, "served counts of %s", label)
		}
		for _, sv := range since {
			if sv.Version == r.FromVersion && sv.Reason != "pin" {
				st.OldServed += sv.Count
			}
		}
		st.FullyServed = st.OldServed == 0 && !s.clock.Now().Before(st.ObservedSince)
	}
	return st, nil
}
