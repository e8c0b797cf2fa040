package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// VerifyOptions configure Verifications; zero values take the defaults.
type VerifyOptions struct {
	// Alerter raises drift and unreachable alerts; nil raises none (the
	// results and audit entries are still recorded).
	Alerter Alerter
	Logger  *slog.Logger // default: the Service's
}

// Verifications is the server side of re-verification: which versions are
// live, and what a worker's report means (drift, new findings,
// unreachable). Safe for concurrent use; two workers reporting one version
// at the same moment may count its consecutive failures once instead of
// twice (last write wins), never raise a drift twice (alerts are keyed).
type Verifications struct {
	svc     *Service
	st      verifyStore
	alerter Alerter
	log     *slog.Logger
}

type verifyStore interface {
	VerifyStore
	GetVersion(ctx context.Context, label, version string, withBlobs bool) (Version, error)
}

// NewVerifications returns re-verification over svc's routing and st.
func NewVerifications(svc *Service, st Store, opts VerifyOptions) *Verifications {
	if opts.Logger == nil {
		opts.Logger = svc.log
	}
	return &Verifications{svc: svc, st: st, alerter: opts.Alerter, log: opts.Logger}
}

// live lists the versions resolve may answer today, label by label, with
// why: the label's default, the version rolling out and the one it
// replaces (still served to the rings not reached), and pinned versions.
func (vs *Verifications) live() []Verification {
	routes := vs.svc.table.Load().routes
	labels := make([]string, 0, len(routes))
	for l := range routes {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	var out []Verification
	for _, label := range labels {
		rt := routes[label]
		why := map[string][]string{}
		var order []string
		add := func(v, reason string) {
			if v == "" {
				return
			}
			if _, ok := why[v]; !ok {
				order = append(order, v)
			}
			if !slices.Contains(why[v], reason) {
				why[v] = append(why[v], reason)
			}
		}
		add(rt.Default, "default")
		if rt.Active != nil {
			add(rt.Active.Version, "rollout")
			add(rt.oldVersion(rt.Active), "rollout")
		}
		orgs := make([]string, 0, len(rt.Pins))
		for org := range rt.Pins {
			orgs = append(orgs, org)
		}
		slices.Sort(orgs)
		for _, org := range orgs {
			p := rt.Pins[org]
			if _, revoked := rt.Revoked[p.Version]; revoked && !p.OverrideRevoked {
				continue
			}
			add(p.Version, "pin:"+org)
		}
		for _, v := range order {
			out = append(out, Verification{Label: label, Version: v, Live: why[v]})
		}
	}
	return out
}

// Targets lists the live versions that carry an image reference: what a
// worker pulls and scans.
func (vs *Verifications) Targets(ctx context.Context) ([]VerifyTarget, error) {
	var out []VerifyTarget
	for _, l := range vs.live() {
		img, err := vs.st.VersionImage(ctx, l.Label, l.Version)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, errWrap(err, "verify targets: image of %s %s", l.Label, l.Version)
		}
		out = append(out, VerifyTarget{Label: l.Label, Version: l.Version, Live: l.Live, Image: img})
	}
	return out, nil
}

// List returns the last verification of every live version; a version
// never verified has Result VerifyNever, one without an image reference
// says so in Error.
func (vs *Verifications) List(ctx context.Context) ([]Verification, error) {
	live := vs.live()
	out := make([]Verification, 0, len(live))
	for _, l := range live {
		v, err := vs.st.GetVerification(ctx, l.Label, l.Version)
		switch {
		case errors.Is(err, ErrNotFound):
			v = Verification{Label: l.Label, Version: l.Version, Result: VerifyNever}
			if _, ierr := vs.st.VersionImage(ctx, l.Label, l.Version); errors.Is(ierr, ErrNotFound) {
				v.Error = "pushed without --ref: nothing to verify"
			}
		case err != nil:
			return nil, errWrap(err, "list verifications: %s %s", l.Label, l.Version)
		}
		v.Live = l.Live
		if ver, err := vs.st.GetVersion(ctx, l.Label, l.Version, false); err == nil {
			v.PushedAt = ver.CreatedAt
		}
		out = append(out, v)
	}
	return out, nil
}

// Record judges a worker's report against the stored evidence and stores
// the result: drift marks the version, writes an audit entry and alerts;
// new findings are reported only; an unreachable image alerts after
// UnreachableAfter consecutive failures, once per streak.
func (vs *Verifications) Record(ctx context.Context, actor string, rep VerifyReport) (Verification, error) {
	img, err := vs.st.VersionImage(ctx, rep.Label, rep.Version)
	if errors.Is(err, ErrNotFound) {
		return Verification{}, fmt.Errorf("verify %s %s: the version has no image reference (push it with --ref): %w", rep.Label, rep.Version, ErrNotFound)
	}
	if err != nil {
		return Verification{}, errWrap(err, "verify %s %s", rep.Label, rep.Version)
	}
	if rep.Digest != "" && rep.Digest != img.Digest {
		return Verification{}, fmt.Errorf("verify %s %s: the report is of %s but the version was pushed as %s (pull by the target's digest): %w",
			rep.Label, rep.Version, rep.Digest, img.Digest, ErrInvalid)
	}
	prev, err := vs.st.GetVerification(ctx, rep.Label, rep.Version)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Verification{}, errWrap(err, "verify %s %s", rep.Label, rep.Version)
	}
	now := vs.svc.clock.Now().UTC()
	v := Verification{Label: rep.Label, Version: rep.Version, Digest: img.Digest, TagDigest: rep.TagDigest,
		CheckedAt: now, LastSuccessAt: prev.LastSuccessAt}
	if rep.Error != "" {
		return vs.unreachable(ctx, v, prev, rep.Error, img)
	}
	stored, err := vs.st.GetVersion(ctx, rep.Label, rep.Version, true)
	if err != nil {
		return Verification{}, errWrap(err, "verify %s %s", rep.Label, rep.Version)
	}
	drift, err := judgeDrift(img, rep, stored.Snapshot)
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s %s: %w", rep.Label, rep.Version, err)
	}
	v.Gate, err = GateOf(rep.CheckReport)
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s %s: %w", rep.Label, rep.Version, err)
	}
	v.NewFindings, err = newFindings(stored.CheckReport, rep.CheckReport)
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s %s: %w", rep.Label, rep.Version, err)
	}
	v.LastSuccessAt, v.Drift = now, drift
	switch {
	case drift != nil:
		v.Result = VerifyDrifted
	case len(v.NewFindings) > 0:
		v.Result = VerifyNewFindings
	default:
		v.Result = VerifyOK
	}
	if drift == nil {
		return v, errWrap(vs.st.PutVerification(ctx, v, nil, AuditEntry{}), "record verification of %s %s", v.Label, v.Version)
	}
	subject := "version/" + v.Label + "/" + v.Version
	audit := AuditEntry{Actor: actor, Action: "version.drift", Subject: subject, Reason: strings.Join(drift.Reasons, "; "),
		Details: details("digest", img.Digest, "tagDigest", drift.TagDigest, "reasons", drift.Reasons)}
	if err := vs.st.PutVerification(ctx, v, drift, audit); err != nil {
		return v, errWrap(err, "record drift of %s %s", v.Label, v.Version)
	}
	a := Alert{ID: "verify/" + v.Label + "/" + v.Version + "/drift/" + driftKey(drift), Kind: AlertDrift,
		Label: v.Label, Version: v.Version, Summary: fmt.Sprintf("%s %s drifted from what was pushed: %s.", v.Label, v.Version, strings.Join(drift.Reasons, "; ")),
		Link: VersionPath(v.Label, v.Version), CreatedAt: now, Details: details("image", img.Ref, "digest", img.Digest, "tagDigest", drift.TagDigest, "reasons", drift.Reasons)}
	return v, vs.alert(ctx, a)
}

func (vs *Verifications) unreachable(ctx context.Context, v, prev Verification, why string, img ImageRef) (Verification, error) {
	v.Result, v.Error, v.Failures, v.FailingSince = VerifyUnreachable, why, 1, v.CheckedAt
	if prev.Result == VerifyUnreachable {
		v.Failures, v.FailingSince = prev.Failures+1, prev.FailingSince
	}
	if err := vs.st.PutVerification(ctx, v, nil, AuditEntry{}); err != nil {
		return v, errWrap(err, "record verification of %s %s", v.Label, v.Version)
	}
	if v.Failures < UnreachableAfter {
		return v, nil
	}
	// One alert per streak: the key names when the streak began.
	a := Alert{ID: fmt.Sprintf("verify/%s/%s/unreachable/%d", v.Label, v.Version, v.FailingSince.UnixMicro()), Kind: AlertUnreachable,
		Label: v.Label, Version: v.Version, CreatedAt: v.CheckedAt, Link: VersionPath(v.Label, v.Version),
		Summary: fmt.Sprintf("%s %s cannot be pulled from %s (%d attempts in a row since %s): %s.", v.Label, v.Version, img.Pull(),
			v.Failures, v.FailingSince.Format("2006-01-02 15:04 MST"), why),
		Details: details("image", img.Ref, "digest", img.Digest, "failures", v.Failures, "error", why)}
	return v, vs.alert(ctx, a)
}

func (vs *Verifications) alert(ctx context.Context, a Alert) error {
	if vs.alerter == nil {
		return nil
	}
	if err := vs.alerter.Alert(ctx, a); err != nil {
		return fmt.Errorf("%s %s: the result is recorded but its alert was not queued (the next verification retries): %w", a.Label, a.Version, err)
	}
	return nil
}

// VersionPath is the API path of one version (an alert's Link).
func VersionPath(label, version string) string {
	return "/api/v1/images/" + label + "/versions/" + version
}

// judgeDrift compares a worker's report with what was pushed: a moved tag
// or a snapshot that differs from the stored one is drift.
func judgeDrift(img ImageRef, rep VerifyReport, stored json.RawMessage) (*Drift, error) {
	d := &Drift{}
	if img.Tag != "" && rep.TagDigest != "" && rep.TagDigest != img.Digest {
		d.TagDigest = rep.TagDigest
		d.Reasons = append(d.Reasons, fmt.Sprintf("tag %s moved from %s to %s", img.TagRef(), img.Digest, rep.TagDigest))
	}
	if len(rep.Snapshot) == 0 {
		return nil, fmt.Errorf("the report has neither a snapshot nor an error: %w", ErrInvalid)
	}
	now, err := snapshot.Decode(bytes.NewReader(rep.Snapshot))
	if err != nil {
		return nil, fmt.Errorf("the report's snapshot: %v: %w", err, ErrInvalid)
	}
	if len(stored) > 0 {
		// A stored snapshot that does not decode (an older schema, a test's
		// placeholder) cannot be compared; the tag check still stands.
		if then, err := snapshot.Decode(bytes.NewReader(stored)); err == nil {
			r := diff.Compare(then, now, nil)
			if n := len(r.Changes); n > 0 {
				var b bytes.Buffer
				if err := r.Write(&b, report.JSON); err != nil {
					return nil, err
				}
				d.Diff = json.RawMessage(bytes.TrimSpace(b.Bytes()))
				ids := make([]string, 0, min(n, 3))
				for _, c := range r.Changes[:min(n, 3)] {
					ids = append(ids, c.Class+" "+c.ID)
				}
				more := ""
				if n > 3 {
					more = fmt.Sprintf(", and %d more", n-3)
				}
				d.Reasons = append(d.Reasons, fmt.Sprintf("the image scans to %d changes from the stored snapshot (%s%s)", n, strings.Join(ids, ", "), more))
			}
		}
	}
	if len(d.Reasons) == 0 {
		return nil, nil
	}
	return d, nil
}

// driftKey names one drift, so the same drift found every day alerts
// once and a new one alerts again.
func driftKey(d *Drift) string {
	h := sha256.New()
	h.Write([]byte(d.TagDigest))
	h.Write([]byte{0})
	h.Write(d.Diff)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// newFindings lists the failures of today's check report that the stored
// one did not have.
func newFindings(then, now json.RawMessage) ([]Finding, error) {
	type results struct {
		Results []struct {
			ID      string `json:"id"`
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"results"`
	}
	if len(now) == 0 {
		return nil, nil
	}
	var a, b results
	if err := json.Unmarshal(now, &b); err != nil {
		return nil, fmt.Errorf("the report's check report: %v: %w", err, ErrInvalid)
	}
	if len(then) > 0 {
		_ = json.Unmarshal(then, &a) // a stored report of another shape counts as no failures
	}
	old := map[string]bool{}
	for _, r := range a.Results {
		if r.Status == "fail" {
			old[r.ID] = true
		}
	}
	var out []Finding
	for _, r := range b.Results {
		if r.Status == "fail" && !old[r.ID] {
			out = append(out, Finding{ID: r.ID, Message: r.Message})
		}
	}
	return out, nil
}
