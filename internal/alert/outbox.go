package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Outbox raises alerts by queueing one outbox item per target; a Sender
// delivers them.
type Outbox struct {
	store   rollout.OutboxStore
	targets []Target
	now     func() time.Time
}

var _ rollout.Alerter = (*Outbox)(nil)

// NewOutbox returns an Alerter queueing into st for targets; clock may be
// nil (the system clock). Every target must Validate, and no two may be
// equal: a config mistake is refused at start, not found at the first
// regression.
func NewOutbox(st rollout.OutboxStore, targets []Target, clock rollout.Clock) (*Outbox, error) {
	seen := map[string]bool{}
	for i, t := range targets {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("alerts[%d]: %w", i, err)
		}
		if seen[t.ID()] {
			return nil, fmt.Errorf("alerts[%d]: %w: target %s (%s) is listed twice", i, rollout.ErrInvalid, t.Redacted(), t.format())
		}
		seen[t.ID()] = true
	}
	now := time.Now
	if clock != nil {
		now = clock.Now
	}
	return &Outbox{store: st, targets: append([]Target(nil), targets...), now: now}, nil
}

// Key is the dedupe key of alert id for target t.
func Key(alertID string, t Target) string { return alertID + "/" + t.ID() }

// Alert queues a for every target in one transaction; idempotent on a.ID
// (see rollout.Alerter). With no targets configured it does nothing.
func (o *Outbox) Alert(ctx context.Context, a rollout.Alert) error {
	if err := rollout.CheckAlert(a); err != nil {
		return err
	}
	if len(o.targets) == 0 {
		return nil
	}
	now := o.now()
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	items := make([]rollout.OutboxItem, len(o.targets))
	for i, t := range o.targets {
		items[i] = rollout.OutboxItem{Key: Key(a.ID, t), URL: t.URL, Format: t.format(), Alert: a, CreatedAt: now}
	}
	if _, err := o.store.Enqueue(ctx, items); err != nil {
		return fmt.Errorf("raise %s alert %s: %w", a.Kind, a.ID, err)
	}
	return nil
}
