package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/analysis"
	"github.com/imagegate/imagegate/internal/rollout"
)

type rolloutData struct {
	R       *rolloutView
	Waiting string
	// StatusAsOf and AnalysisAsOf are when they were read (see staleCache).
	StatusAsOf, AnalysisAsOf time.Time
	Timeline                 []rollout.AuditEntry
	Analysis                 []ringHealth
	// AnalysisOff says why there is no analysis ("" when there is).
	AnalysisOff string
	Actions     []actionLink
}

func (d rolloutData) title() (string, string) {
	return "Rollout " + d.R.ID + " of " + d.R.Label + " " + d.R.Version, "images"
}

type actionLink struct{ Name, Label string }

// ringHealth is one ring's telemetry analysis, ready to draw.
type ringHealth struct {
	rollout.RingAnalysis
	Rates     chart
	Statistic chart
	// Trend is the failure rate of both sides over time, TrendRows the
	// same as a table, TrendBucket each point's width.
	Trend       chart
	TrendRows   []trendRow
	TrendBucket time.Duration
	Signatures  []signatureHealth
	// More counts the live signatures not shown (the Signatures page
	// lists them all).
	More int
}

// signaturesShown bounds the signatures a ring's health shows: the
// regressions, then the strongest evidence (the analysis orders them so).
const signaturesShown = 20

// trendRow is one bucket of a ring's trend, as the table says it.
type trendRow struct {
	When     string
	New, Old string
}

type signatureHealth struct {
	analysis.SignatureResult
	Bars   chart
	Causes []causeView
}

type causeView struct {
	analysis.Cause
	// Link is the diff entry on the version page, when the diff has it.
	Link string
}

// actions lists what an admin may do with a rollout in its state (the
// Service refuses the others with a reason).
func actions(st rollout.State) []actionLink {
	var out []actionLink
	add := func(name, label string, states ...rollout.State) {
		if slices.Contains(states, st) {
			out = append(out, actionLink{name, label})
		}
	}
	add("pause", "Pause", rollout.StatePending, rollout.StateBaking)
	add("resume", "Resume", rollout.StatePaused, rollout.StateHalted)
	add("promote", "Promote", rollout.StateBaking)
	add("halt", "Halt", rollout.StatePending, rollout.StateBaking, rollout.StatePaused)
	add("rollback", "Roll back", activeStates...)
	return out
}

// rolloutState is the live part of the Rollout page.
func (h *Handler) rolloutState(ctx context.Context, id string) (*rolloutView, string, time.Time, error) {
	r, err := h.svc.GetRollout(ctx, id)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	st, asOf, err := h.status(ctx, r.Label)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	var status *rollout.LabelStatus
	waiting := ""
	// The stored rollout is the truth (it is cheap to read); the status,
	// possibly a moment older, adds the served counts while it describes
	// the same revision.
	if st.Rollout != nil && st.Rollout.ID == r.ID && st.Rollout.Revision == r.Revision {
		status, waiting = &st, st.Waiting
	}
	gate := ""
	if sum, err := h.summary(ctx, r.Label, r.Version); err == nil {
		gate = sum.Gate
	} else if !errors.Is(err, rollout.ErrNotFound) {
		return nil, "", time.Time{}, err
	}
	return h.rolloutView(r, status, gate), waiting, asOf, nil
}

func (h *Handler) rolloutPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	id := r.PathValue("id")
	rv, waiting, asOf, err := h.rolloutState(ctx, id)
	if err != nil {
		return err
	}
	d := rolloutData{R: rv, Waiting: waiting, StatusAsOf: asOf, Actions: actions(rv.State)}
	tl, _, err := h.svc.Audit(ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + id}, rollout.Page{Limit: 200})
	if err != nil {
		return err
	}
	slices.Reverse(tl)
	d.Timeline = tl
	a, aAsOf, err := h.analysis(ctx, id)
	d.AnalysisAsOf = aAsOf
	switch {
	case errors.Is(err, rollout.ErrPrecondition):
		d.AnalysisOff = err.Error()
	case err != nil:
		return err
	default:
		sum, _ := h.summary(ctx, rv.Label, rv.Version)
		for _, ra := range a.Rings {
			rh := ringHealthOf(ra, rv, sum)
			tr, err := h.ringTrend(ctx, id, ra.Ring)
			if err != nil {
				return err
			}
			rh.setTrend(tr, rv)
			d.Analysis = append(d.Analysis, rh)
		}
	}
	h.render(w, r, http.StatusOK, "rollout", s, d)
	return nil
}

func ringHealthOf(ra rollout.RingAnalysis, rv *rolloutView, sum *versionSummary) ringHealth {
	rh := ringHealth{RingAnalysis: ra}
	rate := func(failed, jobs int64) float64 {
		if jobs == 0 {
			return 0
		}
		return float64(failed) / float64(jobs)
	}
	rh.Rates = barChart("Failure rate, new vs old version, ring "+ra.Name, "%", []bar{
		{Label: "new " + rv.Version, Value: 100 * rate(ra.New.FailedJobs, ra.New.Jobs), Note: fmt.Sprintf("%d of %d jobs", ra.New.FailedJobs, ra.New.Jobs), Class: "new"},
		{Label: "old " + rv.FromVersion, Value: 100 * rate(ra.Old.FailedJobs, ra.Old.Jobs), Note: fmt.Sprintf("%d of %d jobs", ra.Old.FailedJobs, ra.Old.Jobs), Class: "old"},
		{Label: "new side's history", Value: 100 * rate(ra.New.History.FailedJobs, ra.New.History.Jobs), Note: fmt.Sprintf("%d of %d jobs", ra.New.History.FailedJobs, ra.New.History.Jobs), Class: "hist"},
		{Label: "old side's history", Value: 100 * rate(ra.Old.History.FailedJobs, ra.Old.History.Jobs), Note: fmt.Sprintf("%d of %d jobs", ra.Old.History.FailedJobs, ra.Old.History.Jobs), Class: "hist"},
	})
	agg := ra.Decision.Aggregate
	rh.Statistic = thresholdChart("Aggregate failure test: log e-value against the threshold", agg.LogE, agg.LogThreshold, agg.Regression)
	for i, sr := range ra.Decision.Signatures {
		if i >= signaturesShown && !sr.Test.Regression {
			rh.More = len(ra.Decision.Signatures) - i
			break
		}
		sh := signatureHealth{SignatureResult: sr}
		sh.Bars = smallBars("Pipelines with signature "+sr.ID+" on each side", []bar{
			{Label: "new", Value: float64(sr.New.Pipelines), Note: fmt.Sprintf("%d pipelines, %d jobs, %d orgs", sr.New.Pipelines, sr.New.Jobs, sr.New.Orgs), Class: "new"},
			{Label: "old", Value: float64(sr.Old.Pipelines), Note: fmt.Sprintf("%d pipelines, %d jobs, %d orgs", sr.Old.Pipelines, sr.Old.Jobs, sr.Old.Orgs), Class: "old"},
		})
		for _, c := range ra.Causes[sr.ID] {
			cv := causeView{Cause: c}
			if sum != nil && sum.Changes[c.Change.ID] {
				cv.Link = "/ui/images/" + pathEscape(rv.Label) + "/versions/" + pathEscape(rv.Version) + "#diff"
			}
			sh.Causes = append(sh.Causes, cv)
		}
		rh.Signatures = append(rh.Signatures, sh)
	}
	return rh
}

// setTrend draws the ring's trend (nothing while it has no bucket).
func (rh *ringHealth) setTrend(tr rollout.RingTrend, rv *rolloutView) {
	if len(tr.Buckets) == 0 {
		return
	}
	pts := make([]trendPoint, len(tr.Buckets))
	for i, b := range tr.Buckets {
		pts[i] = trendPoint{Start: b.Start, End: b.Start.Add(tr.Bucket), New: b.New, Old: b.Old}
		rh.TrendRows = append(rh.TrendRows, trendRow{When: bucketText(pts[i]), New: rateText(b.New), Old: rateText(b.Old)})
	}
	rh.TrendBucket = tr.Bucket
	rh.Trend = trendChart("Failure rate over time in ring "+rh.Name+", new vs old version, per "+fmtDuration(tr.Bucket),
		"new "+rv.Version+" (solid, circles)", "old "+rv.FromVersion+" (dashed, squares)", pts)
}

// confirmData is the confirmation of an action: what will happen, a
// required reason.
type confirmData struct {
	R       rollout.Rollout
	Action  actionLink
	Explain string
	Message string
}

func (d confirmData) title() (string, string) { return d.Action.Label + " rollout " + d.R.ID, "images" }

var explanations = map[string]string{
	"pause":    "The rollout stops where it is; rings keep what they serve and bake time keeps counting.",
	"resume":   "The rollout continues; its gates are evaluated again.",
	"promote":  "The current ring is left now: remaining bake time, minimum jobs and manual approval are waived (an unhealthy verdict still halts).",
	"halt":     "The rollout stops; rings already reached keep the new version.",
	"rollback": "Every ring goes back to the previous version at once, and runs forget their assigned version.",
}

func findAction(name string) (actionLink, bool) {
	for _, a := range actions(rollout.StateBaking) {
		if a.Name == name {
			return a, true
		}
	}
	for _, a := range actions(rollout.StatePaused) {
		if a.Name == name {
			return a, true
		}
	}
	return actionLink{}, false
}

func (h *Handler) confirmPage(w http.ResponseWriter, r *http.Request, s *session) error {
	a, ok := findAction(r.URL.Query().Get("action"))
	if !ok {
		return fmt.Errorf("action %q: want pause, resume, promote, halt or rollback: %w", r.URL.Query().Get("action"), rollout.ErrInvalid)
	}
	ro, err := h.svc.GetRollout(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "confirm", s, confirmData{R: ro, Action: a, Explain: explanations[a.Name]})
	return nil
}

func (h *Handler) act(w http.ResponseWriter, r *http.Request, s *session) error {
	a, ok := findAction(r.PostFormValue("action"))
	if !ok {
		return fmt.Errorf("action %q: want pause, resume, promote, halt or rollback: %w", r.PostFormValue("action"), rollout.ErrInvalid)
	}
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		ro, err := h.svc.GetRollout(r.Context(), id)
		if err != nil {
			return err
		}
		h.render(w, r, http.StatusBadRequest, "confirm", s, confirmData{R: ro, Action: a, Explain: explanations[a.Name],
			Message: "A reason is required: it goes into the audit log."})
		return nil
	}
	fn := map[string]func(context.Context, string, string, string) (rollout.Rollout, error){
		"pause": h.svc.Pause, "resume": h.svc.Resume, "promote": h.svc.Promote, "halt": h.svc.Halt, "rollback": h.svc.Rollback,
	}[a.Name]
	ro, err := fn(r.Context(), s.id.Actor, id, reason)
	h.changed(ro.Label, id)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/rollouts/"+pathEscape(id), http.StatusSeeOther)
	return nil
}

// hotfixData asks for an expedited rollout of a version.
type hotfixData struct {
	Label    string
	Versions []rollout.Version
	Message  string
}

func (d hotfixData) title() (string, string) { return "Hotfix " + d.Label, "images" }

func (h *Handler) hotfixPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return h.showHotfix(w, r, s, http.StatusOK, "")
}

func (h *Handler) showHotfix(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) error {
	label := r.PathValue("label")
	vs, _, err := h.svc.Versions(r.Context(), label, rollout.Page{Limit: 50})
	if err != nil {
		return err
	}
	h.render(w, r, status, "hotfix", s, hotfixData{Label: label, Versions: vs, Message: msg})
	return nil
}

// hotfix starts an expedited rollout: shorter bake times, every gate
// still applies. The reason is required like every other action's; the
// rollout.start audit entry records it with the actor and "expedited".
func (h *Handler) hotfix(w http.ResponseWriter, r *http.Request, s *session) error {
	version := r.PostFormValue("version")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" || version == "" {
		return h.showHotfix(w, r, s, http.StatusBadRequest, "Choose a version and give a reason.")
	}
	ro, err := h.svc.StartRollout(r.Context(), s.id.Actor, rollout.StartRequest{Label: r.PathValue("label"), Version: version, Expedited: true, Reason: reason})
	h.changed(r.PathValue("label"), "")
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/rollouts/"+pathEscape(ro.ID), http.StatusSeeOther)
	return nil
}
