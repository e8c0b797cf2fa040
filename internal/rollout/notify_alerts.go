package rollout

import (
	"context"
	"encoding/json"
)

// AlertNotifier turns the controller's decisions into alerts: the
// Notifier the server wires to its outbox (Alerter).
type AlertNotifier struct {
	Alerter Alerter
}

var _ Notifier = AlertNotifier{}

// Notify implements Notifier: one Alert per decision, its ID the
// rollout's revision after the decision (AlertID), so a decision retried
// after a crash queues nothing new.
func (n AlertNotifier) Notify(ctx context.Context, x Notice) error {
	return n.Alerter.Alert(ctx, AlertOf(x))
}

// AlertOf is the alert of a decision: label, version, ring, the
// signature, the probable cause and a link to the analysis.
func AlertOf(x Notice) Alert {
	r := x.Rollout
	a := Alert{ID: AlertID(r.ID, r.Revision), Label: r.Label, Version: r.Version, FromVersion: r.FromVersion, RolloutID: r.ID,
		Ring: x.Ring, Summary: x.Reason, Link: AnalysisPath(r.ID), CreatedAt: x.At}
	switch x.Action {
	case ActionRollback:
		a.Kind = AlertRollback
	case ActionDryRun:
		a.Kind = AlertDryRun
	default:
		a.Kind = AlertHalt
	}
	if x.Ring >= 0 && x.Ring < len(r.Rings) {
		a.RingName = r.Rings[x.Ring].Name
	}
	if d := x.Health.Decision; d != nil {
		if d.Signature != nil {
			a.Signature = AlertSignature{ID: d.Signature.ID, Template: d.Signature.Template}
		}
		for _, c := range d.ProbableCause {
			a.ProbableCause = append(a.ProbableCause, AlertCause{Identity: c.Change.ID, Why: c.Why})
		}
	}
	a.Details, _ = json.Marshal(map[string]any{"health": x.Health})
	return a
}
