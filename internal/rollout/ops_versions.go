package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PushVersion registers v (creating its image if needed). Gate comes from
// v.CheckReport (its "verdict", or "failed" count) and is "unknown"
// without a report, whatever v.Gate said. ErrConflict if it exists.
func (s *Service) PushVersion(ctx context.Context, actor string, v Version) (Version, error) {
	if err := CheckName("label", v.Label); err != nil {
		return Version{}, err
	}
	if err := CheckName("version", v.Version); err != nil {
		return Version{}, err
	}
	gate, err := GateOf(v.CheckReport)
	if err != nil {
		return Version{}, fmt.Errorf("push %s %s: %w", v.Label, v.Version, err)
	}
	if len(v.Snapshot) > 0 && !json.Valid(v.Snapshot) {
		return Version{}, fmt.Errorf("push %s %s: snapshot is not JSON (give the file imagegate scan wrote): %w", v.Label, v.Version, ErrInvalid)
	}
	if v.Image != nil {
		if err := CheckImageRef(*v.Image); err != nil {
			return Version{}, fmt.Errorf("push %s %s: %w", v.Label, v.Version, err)
		}
		img := *v.Image
		img.DriftedAt, img.Drift = time.Time{}, nil
		v.Image = &img
	}
	now := s.clock.Now()
	v.Gate, v.Revoked, v.RevokedReason, v.CreatedAt = gate, false, "", now
	if err := s.st.PutImage(ctx, Image{Label: v.Label, CreatedAt: now},
		AuditEntry{Actor: actor, Action: "image.create", Subject: "image/" + v.Label}); err != nil {
		return Version{}, errWrap(err, "create image %s", v.Label)
	}
	if err := s.st.CreateVersion(ctx, v, AuditEntry{Actor: actor, Action: "version.push",
		Subject: "version/" + v.Label + "/" + v.Version, Details: details("gate", gate)}); err != nil {
		return Version{}, errWrap(err, "push %s %s (versions are immutable: push a new version)", v.Label, v.Version)
	}
	return v, s.refresh(ctx)
}

// RevokeVersion takes a version back for good: it is never served again
// (pins to it stop applying unless they override), runs lose their
// affinity to it, and a rollout of it still under way is rolled back
// with the reason. Revoking a revoked version writes nothing: with the
// same reason it succeeds (a retry), with another it is ErrConflict.
func (s *Service) RevokeVersion(ctx context.Context, actor, label, version, reason string) error {
	if err := checkNames("revoke", "label", label, "version", version); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("revoke %s %s: a reason is required (it is shown to everyone pinned to it): %w", label, version, ErrInvalid)
	}
	if err := CheckText("reason", reason, MaxReason); err != nil {
		return fmt.Errorf("revoke %s %s: %w", label, version, err)
	}
	v, err := s.st.GetVersion(ctx, label, version, false)
	if err != nil {
		return errWrap(err, "revoke %s %s", label, version)
	}
	if v.Revoked {
		// Nothing changes, so nothing is written: a retry (same reason)
		// succeeds; another reason is refused rather than dropped.
		if v.RevokedReason == reason {
			return nil
		}
		return fmt.Errorf("revoke %s %s: %w: it is already revoked (%q); the first reason stands", label, version, ErrConflict, v.RevokedReason)
	}
	if err := s.st.RevokeVersion(ctx, label, version, reason, AuditEntry{Actor: actor, Action: "version.revoke",
		Subject: "version/" + label + "/" + version, Reason: reason}); err != nil {
		return errWrap(err, "revoke %s %s", label, version)
	}
	active, err := s.activeRollouts(ctx, label)
	if err != nil {
		return err
	}
	for _, r := range active {
		if r.Version != version {
			continue
		}
		if _, err := s.transition(ctx, actor, r.ID, "rollout.rollback", "version revoked: "+reason, func(r *Rollout) error {
			if Terminal(r.State) {
				return errNoChange
			}
			r.State, r.Reason = StateRolledBack, "version revoked: "+reason
			return nil
		}); err != nil && !errors.Is(err, errNoChange) {
			return err
		}
	}
	if err := s.st.ForgetRuns(ctx, label); err != nil {
		return errWrap(err, "forget runs of %s after revoking %s", label, version)
	}
	return s.refresh(ctx)
}

// SetRings replaces the ring plan of label ("" = the global plan). Running
// rollouts keep the plan they started with. ErrNotFound for a label no
// version was pushed of: a plan nobody can address by mistake (a typo in
// the label) would otherwise wait silently for an image of that name. The
// serve config may still name labels before their first push
// (ApplyConfigRings).
func (s *Service) SetRings(ctx context.Context, actor, label string, rings []Ring) error {
	if s.managedByConfig(label) {
		key := "rings"
		if label != "" {
			key = "images." + label + ".rings"
		}
		return fmt.Errorf("set rings of %q: %w: the serve config manages this plan (%s) and wins at every start; change it there", label, ErrConflict, key)
	}
	if label != "" {
		if err := CheckName("label", label); err != nil {
			return err
		}
		vs, _, err := s.st.ListVersions(ctx, label, Page{Limit: 1})
		if err != nil {
			return errWrap(err, "set rings of %s", label)
		}
		if len(vs) == 0 {
			return fmt.Errorf("set rings of %s: %w: no version of the image was pushed; push one first (or set the plan in the serve config)", label, ErrNotFound)
		}
	}
	return s.setRings(ctx, actor, label, rings)
}

func (s *Service) setRings(ctx context.Context, actor, label string, rings []Ring) error {
	if label != "" {
		if err := CheckName("label", label); err != nil {
			return err
		}
	}
	if err := ValidateRings(rings); err != nil {
		return err
	}
	subject := "rings/" + label
	if label == "" {
		subject = "rings/global"
	}
	if err := s.st.PutRings(ctx, label, rings, AuditEntry{Actor: actor, Action: "rings.set", Subject: subject, Details: details("rings", rings)}); err != nil {
		return errWrap(err, "set rings of %q", label)
	}
	return s.refresh(ctx)
}

// Images lists registered images.
func (s *Service) Images(ctx context.Context, p Page) ([]Image, string, error) {
	is, next, err := s.st.ListImages(ctx, normPage(p))
	return is, next, errWrap(err, "list images")
}

// Versions lists label's versions, newest first, without blobs.
func (s *Service) Versions(ctx context.Context, label string, p Page) ([]Version, string, error) {
	vs, next, err := s.st.ListVersions(ctx, label, normPage(p))
	return vs, next, errWrap(err, "list versions of %s", label)
}

// Version returns one version with its snapshot and check report.
func (s *Service) Version(ctx context.Context, label, version string) (Version, error) {
	v, err := s.st.GetVersion(ctx, label, version, true)
	if err != nil {
		return v, errWrap(err, "version %s %s", label, version)
	}
	if img, err := s.st.VersionImage(ctx, label, version); err == nil {
		v.Image = &img
	} else if !errors.Is(err, ErrNotFound) {
		return v, errWrap(err, "image of version %s %s", label, version)
	}
	return v, nil
}
