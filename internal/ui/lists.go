package ui

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Signatures page.

type signaturesData struct {
	Label, Version string
	Rollout        *rollout.Rollout
	Signatures     []signatureRow
	Next           string
	// Reports says whether user reports are shown (the server takes
	// them), and ReportsRead how many of the label's newest were matched.
	Reports     bool
	ReportsRead int
	// AsOf is when the signatures were read (see staleCache).
	AsOf time.Time
}

// signaturesPerPage is how many signatures one page lists.
const signaturesPerPage = 50

// reportsPerPage bounds the reports the Signatures page matches: the
// label's newest, read in one query rather than one per signature.
const reportsPerPage = 500

// sparkWindow is how far back a signature's sparkline reaches, an hour
// per bar.
const sparkWindow = 48 * time.Hour

// reportsShown is how many of a signature's reports the page quotes.
const reportsShown = 3

func (d signaturesData) title() (string, string) { return "Signatures", "signatures" }

type signatureRow struct {
	rollout.Signature
	// Rings counts failed jobs with the signature per ring of the
	// version's rollout and side.
	Rings []ringCounts
	// ByRing draws Rings' new side; Spark the failed jobs per hour over
	// sparkWindow, SparkText the same in words.
	ByRing    chart
	Spark     chart
	SparkText string
	// Reports are the newest user reports matched to the signature (at
	// most reportsShown), of ReportCount from ReportOrgs.
	Reports     []rollout.Report
	ReportCount int
	ReportOrgs  []string
}

type ringCounts struct {
	Ring                int
	Name                string
	New, Control, Other int64
}

func (h *Handler) signaturesPage(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := signaturesData{Label: q.Get("label"), Version: q.Get("version")}
	for _, v := range []string{d.Label, d.Version} {
		if v != "" {
			if err := rollout.CheckName("label or version", v); err != nil {
				return err
			}
		}
	}
	if d.Label == "" {
		h.render(w, r, http.StatusOK, "signatures", s, d)
		return nil
	}
	ctx := r.Context()
	sp, asOf, err := h.signatures(ctx, d.Label, d.Version, q.Get("after"))
	if err != nil {
		return err
	}
	sigs := sp.sigs
	d.Next, d.AsOf = sp.next, asOf
	// Counts per ring and side come from the version's newest rollout;
	// a ring's telemetry holds every signature (thousands), the page 50.
	tel := make(map[string][]ringCounts, len(sigs))
	for _, sig := range sigs {
		tel[sig.ID] = nil
	}
	if d.Version != "" {
		rs, _, err := h.svc.ListRollouts(ctx, d.Label, nil, rollout.Page{Limit: 20})
		if err != nil {
			return err
		}
		for i := range rs {
			if rs[i].Version == d.Version {
				d.Rollout = &rs[i]
				break
			}
		}
		if d.Rollout != nil {
			last := d.Rollout.Ring
			if d.Rollout.State == rollout.StateCompleted {
				last = len(d.Rollout.Rings) - 1
			}
			for ring := 0; ring <= last && ring < len(d.Rollout.Rings); ring++ {
				t, err := h.ringTelemetry(ctx, d.Rollout.ID, ring)
				if err != nil {
					return err
				}
				for _, rsig := range t.Signatures {
					if _, ok := tel[rsig.ID]; !ok {
						continue
					}
					c := ringCounts{Ring: ring, Name: d.Rollout.Rings[ring].Name, New: rsig.Cohorts[rollout.CohortNew].Jobs,
						Control: rsig.Cohorts[rollout.CohortControl].Jobs, Other: rsig.Cohorts[rollout.CohortOld].Jobs}
					tel[rsig.ID] = append(tel[rsig.ID], c)
				}
			}
		}
	}
	byReport := map[string][]rollout.Report{}
	if h.reports != nil {
		d.Reports = true
		reps, _, err := h.reports.List(ctx, rollout.ReportFilter{Label: d.Label}, rollout.Page{Limit: reportsPerPage})
		if err != nil {
			return err
		}
		d.ReportsRead = len(reps)
		for _, rep := range reps {
			if _, ok := tel[rep.Signature]; ok && rep.Signature != "" {
				byReport[rep.Signature] = append(byReport[rep.Signature], rep)
			}
		}
	}
	for _, sig := range sigs {
		row := signatureRow{Signature: sig, Rings: tel[sig.ID]}
		if reps := byReport[sig.ID]; len(reps) > 0 {
			row.ReportCount = len(reps)
			row.Reports = reps[:min(len(reps), reportsShown)]
			for _, rep := range reps {
				if !slices.Contains(row.ReportOrgs, rep.Org) {
					row.ReportOrgs = append(row.ReportOrgs, rep.Org)
				}
			}
			slices.Sort(row.ReportOrgs)
		}
		if len(row.Rings) > 0 {
			var labels []string
			var vals []int64
			for _, c := range row.Rings {
				labels = append(labels, fmt.Sprintf("ring %s, new version", c.Name))
				vals = append(vals, c.New)
			}
			row.ByRing = sparkline("failed jobs on the new version by ring", labels, vals)
		}
		row.Spark, row.SparkText = trendSpark(sig.ID, sig.Trend)
		d.Signatures = append(d.Signatures, row)
	}
	h.render(w, r, http.StatusOK, "signatures", s, d)
	return nil
}

// Pins page.

type pinsData struct {
	Pins    []rollout.PinView
	Next    string
	Org     string // the org of an org token; "" for admins
	Message string
	Soon    int
}

func (d pinsData) title() (string, string) { return "Pins", "pins" }

func (h *Handler) pinsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return h.showPins(w, r, s, http.StatusOK, "")
}

func (h *Handler) showPins(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) error {
	org := s.id.Org // "" for an admin: every org
	pins, next, err := h.svc.ListPins(r.Context(), org, "", rollout.Page{After: r.URL.Query().Get("after"), Limit: 50})
	if err != nil {
		return err
	}
	d := pinsData{Pins: pins, Next: next, Org: org, Message: msg}
	for _, p := range pins {
		if p.ExpiresSoon {
			d.Soon++
		}
	}
	h.render(w, r, status, "pins", s, d)
	return nil
}

// pinOrg is the org a pin form acts for: an org token's own, always.
func pinOrg(r *http.Request, s *session) (string, error) {
	if s.id.Org != "" {
		if o := r.PostFormValue("org"); o != "" && o != s.id.Org {
			return "", fmt.Errorf("token %q belongs to organisation %q and cannot act for %q: %w", s.id.Name, s.id.Org, o, rollout.ErrForbidden)
		}
		return s.id.Org, nil
	}
	if !s.id.IsAdmin() {
		return "", fmt.Errorf("role %q cannot manage pins: %w", s.id.Role, rollout.ErrForbidden)
	}
	return r.PostFormValue("org"), nil
}

func (h *Handler) setPin(w http.ResponseWriter, r *http.Request, s *session) error {
	org, err := pinOrg(r, s)
	if err != nil {
		return err
	}
	d, err := time.ParseDuration(strings.TrimSpace(r.PostFormValue("for")))
	if err != nil || d <= 0 {
		return h.showPins(w, r, s, http.StatusBadRequest, "How long the pin lasts must be a duration such as 72h.")
	}
	_, err = h.svc.SetPin(r.Context(), s.id.Actor, rollout.Pin{Org: org, Label: r.PostFormValue("label"), Version: r.PostFormValue("version"),
		Owner: "token:" + s.id.Name, Reason: r.PostFormValue("reason"), ExpiresAt: h.now().Add(d)})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/pins", http.StatusSeeOther)
	return nil
}

func (h *Handler) clearPin(w http.ResponseWriter, r *http.Request, s *session) error {
	org, err := pinOrg(r, s)
	if err != nil {
		return err
	}
	if err := h.svc.ClearPin(r.Context(), s.id.Actor, org, r.PostFormValue("label")); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/pins", http.StatusSeeOther)
	return nil
}

// Audit page.

type auditData struct {
	Subject, Actor, Action, Since, Until string
	Entries                              []rollout.AuditEntry
	Next                                 string
}

func (d auditData) title() (string, string) { return "Audit log", "audit" }

func (d auditData) NextQuery() string {
	return "subject=" + urlQueryEscape(d.Subject) + "&actor=" + urlQueryEscape(d.Actor) + "&action=" + urlQueryEscape(d.Action) +
		"&since=" + urlQueryEscape(d.Since) + "&until=" + urlQueryEscape(d.Until) + "&after=" + urlQueryEscape(d.Next)
}

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := auditData{Subject: q.Get("subject"), Actor: q.Get("actor"), Action: q.Get("action"), Since: q.Get("since"), Until: q.Get("until")}
	f := rollout.AuditFilter{SubjectPrefix: d.Subject, Actor: d.Actor, Action: d.Action}
	for _, v := range []struct {
		name, in string
		out      *time.Time
	}{{"since", d.Since, &f.Since}, {"until", d.Until, &f.Until}} {
		if v.in == "" {
			continue
		}
		t, err := parseWhen(v.in)
		if err != nil {
			return fmt.Errorf("%s %q: want a time such as 2026-12-01T10:00 or 2026-12-01: %w", v.name, v.in, rollout.ErrInvalid)
		}
		*v.out = t
	}
	for _, v := range []string{d.Subject, d.Actor, d.Action, q.Get("after")} {
		if err := rollout.CheckLine("audit filter", v, rollout.MaxLine); err != nil {
			return err
		}
	}
	entries, next, err := h.svc.Audit(r.Context(), f, rollout.Page{After: q.Get("after"), Limit: 50})
	if err != nil {
		return err
	}
	d.Entries, d.Next = entries, next
	h.render(w, r, http.StatusOK, "audit", s, d)
	return nil
}

// parseWhen reads the datetime-local and date inputs' formats and RFC 3339,
// as UTC.
func parseWhen(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}
