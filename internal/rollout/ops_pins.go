package rollout

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SetPin pins org's label to a version until pin.ExpiresAt (required, in
// the future). A revoked version is refused (ErrPrecondition) unless
// OverrideRevoked with a Reason. Owner defaults to actor.
func (s *Service) SetPin(ctx context.Context, actor string, pin Pin) (Pin, error) {
	for _, c := range [][2]string{{"org", pin.Org}, {"label", pin.Label}, {"version", pin.Version}} {
		if err := CheckName(c[0], c[1]); err != nil {
			return Pin{}, fmt.Errorf("pin: %w", err)
		}
	}
	if err := CheckText("reason", pin.Reason, MaxReason); err != nil {
		return Pin{}, fmt.Errorf("pin: %w", err)
	}
	if err := CheckLine("owner", pin.Owner, MaxLine); err != nil {
		return Pin{}, fmt.Errorf("pin: %w", err)
	}
	now := s.clock.Now()
	switch {
	case strings.TrimSpace(pin.Reason) == "":
		return Pin{}, fmt.Errorf("pin %s %s: a reason is required: %w", pin.Org, pin.Label, ErrInvalid)
	case pin.ExpiresAt.IsZero():
		return Pin{}, fmt.Errorf("pin %s %s: an expiry is required (pins are temporary): %w", pin.Org, pin.Label, ErrInvalid)
	case !pin.ExpiresAt.After(now):
		return Pin{}, fmt.Errorf("pin %s %s: expiry %s is not in the future: %w", pin.Org, pin.Label, pin.ExpiresAt.Format(time.RFC3339), ErrInvalid)
	}
	v, err := s.st.GetVersion(ctx, pin.Label, pin.Version, false)
	if err != nil {
		return Pin{}, errWrap(err, "pin %s to %s %s", pin.Org, pin.Label, pin.Version)
	}
	if v.Revoked && !pin.OverrideRevoked {
		return Pin{}, fmt.Errorf("pin %s to %s %s: the version is revoked (%s); pin another version, or override the revocation with a reason: %w",
			pin.Org, pin.Label, pin.Version, v.RevokedReason, ErrPrecondition)
	}
	if !v.Revoked {
		pin.OverrideRevoked = false
	}
	if pin.Owner == "" {
		pin.Owner = actor
	}
	pin.CreatedBy, pin.CreatedAt = actor, now
	if err := s.st.PutPin(ctx, pin, AuditEntry{Actor: actor, Action: "pin.set", Subject: "pin/" + pin.Org + "/" + pin.Label, Reason: pin.Reason,
		Details: details("version", pin.Version, "expiresAt", pin.ExpiresAt, "owner", pin.Owner, "overrideRevoked", pin.OverrideRevoked)}); err != nil {
		return Pin{}, errWrap(err, "pin %s %s", pin.Org, pin.Label)
	}
	return pin, s.refresh(ctx)
}

// ClearPin removes org's pin of label; ErrNotFound when there is none.
func (s *Service) ClearPin(ctx context.Context, actor, org, label string) error {
	if err := checkNames("clear pin", "org", org, "label", label); err != nil {
		return err
	}
	if err := s.st.DeletePin(ctx, org, label, AuditEntry{Actor: actor, Action: "pin.clear", Subject: "pin/" + org + "/" + label}); err != nil {
		return errWrap(err, "clear pin of %s %s", org, label)
	}
	return s.refresh(ctx)
}

// ListPins lists pins (filtered by org and/or label), expired ones
// included and flagged.
func (s *Service) ListPins(ctx context.Context, org, label string, p Page) ([]PinView, string, error) {
	now := s.clock.Now()
	pins, next, err := s.st.ListPins(ctx, org, label, true, now, normPage(p))
	if err != nil {
		return nil, "", errWrap(err, "list pins")
	}
	out := make([]PinView, len(pins))
	for i, pin := range pins {
		out[i] = PinView{Pin: pin, Expired: !now.Before(pin.ExpiresAt)}
		out[i].ExpiresSoon = !out[i].Expired && pin.ExpiresAt.Sub(now) <= s.opts.PinExpiryWarning
	}
	return out, next, nil
}
