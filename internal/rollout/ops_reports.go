package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Escalation actions: what the server does when enough organisations
// report one signature (the serve config's reports.action).
const (
	EscalateHalt  = "halt"  // alert, and halt the running rollout whose version carries the signature
	EscalateAlert = "alert" // alert only
)

// ReportsActor names the escalation in the audit log.
const ReportsActor = "system:reports"

// ReportPolicy says when user reports escalate; zero values take the
// defaults.
type ReportPolicy struct {
	// EscalateOrgs distinct organisations reporting one signature within
	// Window escalate it; default 3. Distinct orgs, not reports: one org
	// reporting ten times is one voice.
	EscalateOrgs int
	// Window is how far back reports count; default 24h.
	Window time.Duration
	// Action is EscalateHalt (default) or EscalateAlert.
	Action string
}

// WithDefaults fills p's zero values.
func (p ReportPolicy) WithDefaults() ReportPolicy {
	if p.EscalateOrgs == 0 {
		p.EscalateOrgs = 3
	}
	if p.Window == 0 {
		p.Window = 24 * time.Hour
	}
	if p.Action == "" {
		p.Action = EscalateHalt
	}
	return p
}

// Validate refuses a policy that cannot work; it checks p as given, so
// zero values (defaults) pass.
func (p ReportPolicy) Validate() error {
	switch {
	case p.EscalateOrgs < 0:
		return fmt.Errorf("escalateOrgs %d: %w: want a positive number of organisations", p.EscalateOrgs, ErrInvalid)
	case p.Window < 0:
		return fmt.Errorf("window %v: %w: want a positive duration such as 24h", p.Window, ErrInvalid)
	}
	switch p.Action {
	case "", EscalateHalt, EscalateAlert:
	default:
		return fmt.Errorf("action %q: %w: want halt or alert", p.Action, ErrInvalid)
	}
	return nil
}

// ReportMatcher is what a Signer may offer besides Sign for user reports:
// a report must not teach the miner (a sentence clustered with real error
// lines could generalise a signature and change its id), so Reports uses
// MatchReport when the Signer has it, and Sign otherwise.
//
// Contract: MatchReport returns the signature text belongs to among those
// already known (known true), or else the id and template text would have
// as a new signature (known false), without adding it; id "" means the
// text yields none. Ids follow Signer's rules. Safe for concurrent use.
type ReportMatcher interface {
	MatchReport(text string) (id, template string, known bool)
}

// ReportOptions configure Reports.
type ReportOptions struct {
	Policy ReportPolicy
	// Alerter raises escalation alerts; nil records and acts without
	// alerting.
	Alerter Alerter
	// Signer signs report texts; default the Service's (ServiceOptions.
	// Signer), so reports and job events share one miner. Without either,
	// reports are stored unsigned and never escalate.
	Signer Signer
}

// Reports takes user reports: it stores them, signs their text like a
// failed job's error text, and escalates a signature that EscalateOrgs
// organisations reported within Window: an escalation alert, and (policy
// halt) a halt of the running rollout whose version carries the signature
// in job events and whose old version does not. Each escalation happens
// once per signature and rollout (EscalationKey), on any replica.
type Reports struct {
	svc    *Service
	st     ReportStore
	policy ReportPolicy
	alert  Alerter
	signer Signer
	log    *slog.Logger
}

// NewReports returns Reports over svc and st; ErrInvalid for a policy
// that fails Validate.
func NewReports(svc *Service, st ReportStore, opts ReportOptions) (*Reports, error) {
	if err := opts.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("reports policy: %w", err)
	}
	signer := opts.Signer
	if signer == nil {
		signer = svc.opts.Signer
	}
	return &Reports{svc: svc, st: st, policy: opts.Policy.WithDefaults(), alert: opts.Alerter, signer: signer, log: svc.log}, nil
}

// ReportResult is what a reporter learns.
type ReportResult struct {
	Report Report `json:"report"`
	// Orgs is how many distinct organisations reported the signature
	// within the window, this one included (0 without a signature).
	Orgs int `json:"orgs"`
	// Escalation is the signature's escalation for its rollout, when it
	// has been escalated (by this report or an earlier one).
	Escalation *Escalation `json:"escalation,omitempty"`
	// Replayed is true when the report was stored before under its
	// idempotency key: this answer is a retry's, nothing was added, and
	// Orgs and Escalation are as they stand now.
	Replayed bool `json:"replayed,omitempty"`
}

// Report stores r from actor (r.Org is the organisation reporting; the
// caller has checked actor may speak for it), signs it and escalates when
// the policy says so. The report's signature is the one its text's last
// error line yields (signature.Extract's rules, as for job events): a
// pasted traceback or error line matches the signature of the jobs that
// failed with it; prose ("our builds fail since the update") falls back to
// its last line, which matches no job's signature and counts only with
// reports of the same sentence. ErrNotFound for an unregistered label,
// ErrInvalid for CheckReport's refusals and an unregistered version.
//
// With r.IdempotencyKey set, a report r.Org already sent under that key is
// not stored again: the result is the stored report with Replayed set, and
// ErrKeyReused when the key came with a different report. A replay counts
// and escalates like the first attempt, from the stored report: it adds
// no organisation and no report, and the escalation record makes a second
// escalation impossible, so the replay only finishes what a first attempt
// cut short (an escalation that failed after the report was stored).
func (rs *Reports) Report(ctx context.Context, actor string, r Report) (ReportResult, error) {
	r.Actor, r.ID, r.Signature, r.Template, r.Known = actor, 0, "", "", false
	r.CreatedAt = rs.svc.clock.Now().UTC()
	if err := CheckReport(r); err != nil {
		return ReportResult{}, err
	}
	if err := rs.checkLabel(ctx, r.Label); err != nil {
		return ReportResult{}, err
	}
	if r.Version != "" {
		if _, err := rs.svc.st.GetVersion(ctx, r.Label, r.Version, false); errors.Is(err, ErrNotFound) {
			return ReportResult{}, fmt.Errorf("report on %s: version %q is not registered (leave it out when unsure): %w", r.Label, r.Version, ErrInvalid)
		} else if err != nil {
			return ReportResult{}, errWrap(err, "report on %s: read version %s", r.Label, r.Version)
		}
	}
	r.Signature, r.Template, r.Known = rs.sign(r.Text)
	stored, added, err := rs.st.AddReport(ctx, r)
	if errors.Is(err, ErrKeyReused) {
		return ReportResult{}, err // says all, on one line
	}
	if err != nil {
		return ReportResult{}, errWrap(err, "store report on %s from %s", r.Label, r.Org)
	}
	res := ReportResult{Report: stored, Replayed: !added}
	if stored.Signature == "" {
		return res, nil
	}
	orgs, err := rs.st.ReportOrgs(ctx, stored.Label, stored.Signature, stored.CreatedAt.Add(-rs.policy.Window))
	if err != nil {
		return res, errWrap(err, "count reports of signature %s on %s", stored.Signature, stored.Label)
	}
	res.Orgs = len(orgs)
	if len(orgs) < rs.policy.EscalateOrgs {
		return res, nil
	}
	e, err := rs.escalate(ctx, stored, orgs)
	if err != nil {
		// The report is stored; sending it again retries the escalation
		// (a repeat report of one org does not count twice).
		return res, fmt.Errorf("report %d stored, but escalating signature %s failed (send the report again): %w", stored.ID, stored.Signature, err)
	}
	res.Escalation = &e
	return res, nil
}

func (rs *Reports) checkLabel(ctx context.Context, label string) error {
	if rs.svc.table.Load().routes[label] != nil {
		return nil
	}
	if err := rs.svc.refresh(ctx); err != nil {
		return err
	}
	if rs.svc.table.Load().routes[label] == nil {
		return fmt.Errorf("report on %q: the image is not registered (see imagegate version list): %w", label, ErrNotFound)
	}
	return nil
}

func (rs *Reports) sign(text string) (id, template string, known bool) {
	if rs.signer == nil {
		return "", "", false
	}
	text = CutErrorText(text, MaxErrorText)
	if m, ok := rs.signer.(ReportMatcher); ok {
		return m.MatchReport(text)
	}
	id, template = rs.signer.Sign(text)
	return id, template, false
}

// escalate acts on r's signature once per rollout. The order makes a
// crash or a racing replica harmless: the escalation record, written last,
// is what stops repeats; before it exists, repeating is idempotent (the
// halt of a halted rollout is skipped, the alert is keyed by the
// escalation).
func (rs *Reports) escalate(ctx context.Context, r Report, orgs []string) (Escalation, error) {
	ro, err := rs.rolloutCarrying(ctx, r.Label, r.Signature)
	if err != nil {
		return Escalation{}, err
	}
	e := Escalation{Label: r.Label, Signature: r.Signature, Template: r.Template, Orgs: len(orgs), Action: rs.policy.Action,
		Version: r.Version, CreatedAt: r.CreatedAt}
	if ro != nil {
		e.RolloutID, e.Version = ro.ID, ro.Version
	} else {
		e.Action = EscalateAlert // nothing to halt
	}
	e.Key = EscalationKey(r.Label, r.Signature, e.RolloutID)
	if prev, err := rs.st.GetEscalation(ctx, e.Key); err == nil {
		return prev, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Escalation{}, errWrap(err, "read escalation %s", e.Key)
	}

	why := fmt.Sprintf("%d organisations reported signature %s (%s) within %s", len(orgs), r.Signature, r.Template, rs.policy.Window)
	subject := "image/" + r.Label
	if ro != nil {
		subject = "rollout/" + ro.ID
		switch {
		case e.Action != EscalateHalt:
		case ro.State == StatePending || ro.State == StateBaking || ro.State == StatePaused:
			if _, err := rs.svc.Halt(ctx, ReportsActor, ro.ID, "user reports: "+why); err != nil && !errors.Is(err, ErrPrecondition) {
				return Escalation{}, err
			}
		}
	}
	if rs.alert != nil {
		if err := rs.alert.Alert(ctx, rs.alertOf(e, ro, why, orgs)); err != nil {
			return Escalation{}, err
		}
	}
	audit := AuditEntry{Actor: ReportsActor, Action: "report.escalate", Subject: subject, Reason: why,
		Details: details("signature", e.Signature, "template", e.Template, "orgs", orgs, "window", rs.policy.Window.String(),
			"action", e.Action, "rollout", e.RolloutID, "version", e.Version, "report", r.ID)}
	if _, err := rs.st.AddEscalation(ctx, e, audit); err != nil {
		return Escalation{}, errWrap(err, "record escalation %s", e.Key)
	}
	// Of racing replicas one recorded it; all return the record.
	stored, err := rs.st.GetEscalation(ctx, e.Key)
	return stored, errWrap(err, "read escalation %s", e.Key)
}

func (rs *Reports) alertOf(e Escalation, ro *Rollout, why string, orgs []string) Alert {
	a := Alert{ID: e.Key, Kind: AlertEscalation, Label: e.Label, Version: e.Version, Ring: -1,
		Signature: AlertSignature{ID: e.Signature, Template: e.Template},
		Link:      "/api/v1/reports?label=" + e.Label, CreatedAt: e.CreatedAt,
		Details: details("orgs", orgs, "window", rs.policy.Window.String(), "action", e.Action)}
	switch {
	case ro == nil:
		a.Summary = "User reports: " + why + "; no running rollout of " + e.Label + " carries it in job events, so nothing was halted."
	case e.Action == EscalateHalt:
		a.Summary = fmt.Sprintf("User reports: %s; rollout %s of %s %s is halted.", why, ro.ID, e.Label, ro.Version)
	default:
		a.Summary = fmt.Sprintf("User reports: %s; rollout %s of %s %s carries it (policy: alert only, not halted).", why, ro.ID, e.Label, ro.Version)
	}
	if ro != nil {
		a.FromVersion, a.RolloutID, a.Ring, a.Link = ro.FromVersion, ro.ID, ro.Ring, AnalysisPath(ro.ID)
		if ro.Ring >= 0 && ro.Ring < len(ro.Rings) {
			a.RingName = ro.Rings[ro.Ring].Name
		}
	}
	return a
}

// rolloutCarrying returns the unfinished rollout of label whose version
// has signature in its job events while its old version has not (a
// signature both versions produce is not the new version's doing), or nil.
func (rs *Reports) rolloutCarrying(ctx context.Context, label, signature string) (*Rollout, error) {
	active, err := rs.svc.activeRollouts(ctx, label)
	if err != nil {
		return nil, err
	}
	for _, ro := range active {
		onNew, err := rs.hasSignature(ctx, label, ro.Version, signature)
		if err != nil {
			return nil, err
		}
		onOld := false
		if onNew && ro.FromVersion != "" {
			if onOld, err = rs.hasSignature(ctx, label, ro.FromVersion, signature); err != nil {
				return nil, err
			}
		}
		if onNew && !onOld {
			return &ro, nil
		}
	}
	return nil, nil
}

func (rs *Reports) hasSignature(ctx context.Context, label, version, id string) (bool, error) {
	found := false
	err := each(ctx, func(p Page) ([]Signature, string, error) { return rs.svc.st.ListSignatures(ctx, label, version, p) },
		func(s Signature) bool { found = s.ID == id; return !found })
	return found, errWrap(err, "signatures of %s %s", label, version)
}

// List pages through reports, newest first.
func (rs *Reports) List(ctx context.Context, f ReportFilter, p Page) ([]Report, string, error) {
	out, next, err := rs.st.ListReports(ctx, f, normPage(p))
	return out, next, errWrap(err, "list reports")
}
