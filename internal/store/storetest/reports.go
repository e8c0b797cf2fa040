package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

// RunReports runs the rollout.ReportStore contract tests against stores
// made by open (the same rules as Run's open).
func RunReports(t *testing.T, open func(t *testing.T) rollout.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s rollout.Store)
	}{
		{"AddList", testReportsAddList},
		{"Refused", testReportsRefused},
		{"Orgs", testReportOrgs},
		{"Escalation", testEscalation},
		{"EscalationRace", testEscalationRace},
		{"IdempotencyKey", testReportKey},
		{"IdempotencyKeyRace", testReportKeyRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// Report returns a report of org on img with signature sig at.
func Report(org, sig string, at time.Time) rollout.Report {
	return rollout.Report{Org: org, Label: "img", Version: "v2", JobID: "job-" + org,
		Text:      "Traceback (most recent call last):\nModuleNotFoundError: No module named '_sqlite3'\n",
		Signature: sig, Template: "ModuleNotFoundError: No module named '_sqlite3'", Known: sig != "",
		Actor: "token:" + org, CreatedAt: at}
}

func allReports(t *testing.T, s rollout.Store, f rollout.ReportFilter) []rollout.Report {
	t.Helper()
	var all []rollout.Report
	p := rollout.Page{Limit: 2}
	for {
		got, next, err := s.ListReports(ctx(t), f, p)
		must(t, err)
		all = append(all, got...)
		if next == "" {
			return all
		}
		p.After = next
	}
}

// testReportsAddList: reports come back as AddReport returned them,
// newest first, filtered by label and signature, across pages.
func testReportsAddList(t *testing.T, s rollout.Store) {
	var added []rollout.Report
	for i, r := range []rollout.Report{
		Report("org-a", "sig-1", T0),
		Report("org-b", "sig-2", T0.Add(time.Second)),
		{Org: "org-c", Label: "other", Text: "our builds fail since this morning", Actor: "token:admin", CreatedAt: T0.Add(1500 * time.Microsecond)},
		Report("org-a", "sig-1", T0.Add(time.Minute)),
		Report("org-d", "", T0.Add(time.Hour)),
	} {
		got, ok, err := s.AddReport(ctx(t), r)
		must(t, err)
		if !ok {
			t.Fatalf("report %d: AddReport returned false, want true for a report without a key", i)
		}
		if got.ID == 0 || (i > 0 && got.ID <= added[i-1].ID) {
			t.Fatalf("report %d: ID %d, want increasing IDs", i, got.ID)
		}
		r.ID = got.ID
		if diff := cmp.Diff(r, got); diff != "" {
			t.Fatalf("AddReport returned (-want +got):\n%s", diff)
		}
		added = append(added, got)
	}
	// A report without CreatedAt gets the current time.
	now, _, err := s.AddReport(ctx(t), rollout.Report{Org: "org-e", Label: "img", Text: "x"})
	must(t, err)
	if time.Since(now.CreatedAt) > time.Minute || now.CreatedAt.Location() != time.UTC {
		t.Errorf("default CreatedAt %v, want now in UTC", now.CreatedAt)
	}
	rev := func(rs ...rollout.Report) []rollout.Report {
		out := make([]rollout.Report, len(rs))
		for i, r := range rs {
			out[len(rs)-1-i] = r
		}
		return out
	}
	tests := []struct {
		f    rollout.ReportFilter
		want []rollout.Report
	}{
		{rollout.ReportFilter{}, rev(added[0], added[1], added[2], added[3], added[4], now)},
		{rollout.ReportFilter{Label: "img"}, rev(added[0], added[1], added[3], added[4], now)},
		{rollout.ReportFilter{Label: "img", Signature: "sig-1"}, rev(added[0], added[3])},
		{rollout.ReportFilter{Signature: "sig-2"}, rev(added[1])},
		{rollout.ReportFilter{Label: "nope"}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, allReports(t, s, tt.f), equateEmpty); diff != "" {
			t.Errorf("ListReports(%+v) (-want +got):\n%s", tt.f, diff)
		}
	}
	_, _, err = s.ListReports(ctx(t), rollout.ReportFilter{}, rollout.Page{After: "%%%"})
	wantErr(t, "ListReports with a bad cursor", err, rollout.ErrInvalid)
}

// testReportsRefused: CheckReport's refusals, before anything is stored.
func testReportsRefused(t *testing.T, s rollout.Store) {
	ok := Report("org-a", "sig-1", T0)
	for name, mut := range map[string]func(r *rollout.Report){
		"no org":         func(r *rollout.Report) { r.Org = "" },
		"no label":       func(r *rollout.Report) { r.Label = "" },
		"blank text":     func(r *rollout.Report) { r.Text = " \n\t" },
		"NUL in text":    func(r *rollout.Report) { r.Text = "a\x00b" },
		"invalid UTF-8":  func(r *rollout.Report) { r.Text = "a\xffb" },
		"text too long":  func(r *rollout.Report) { r.Text = string(make([]byte, rollout.MaxReportText+1)) },
		"job id newline": func(r *rollout.Report) { r.JobID = "a\nb" },
		"long version":   func(r *rollout.Report) { r.Version = fmt.Sprintf("%0*d", rollout.MaxReportField+1, 0) },
		"key with space": func(r *rollout.Report) { r.IdempotencyKey = "a b" },
		"key too long":   func(r *rollout.Report) { r.IdempotencyKey = strings.Repeat("k", rollout.MaxKey+1) },
		"key not ASCII":  func(r *rollout.Report) { r.IdempotencyKey = "kéy" },
	} {
		r := ok
		mut(&r)
		_, _, err := s.AddReport(ctx(t), r)
		wantErr(t, "AddReport with "+name, err, rollout.ErrInvalid)
	}
	if got := allReports(t, s, rollout.ReportFilter{}); len(got) != 0 {
		t.Errorf("refused reports were stored: %+v", got)
	}
}

// testReportOrgs: distinct orgs of one label and signature from since on
// (inclusive), sorted.
func testReportOrgs(t *testing.T, s rollout.Store) {
	for _, r := range []rollout.Report{
		Report("org-c", "sig-1", T0.Add(-time.Microsecond)), // before the window
		Report("org-b", "sig-1", T0),
		Report("org-a", "sig-1", T0.Add(time.Hour)),
		Report("org-b", "sig-1", T0.Add(2*time.Hour)), // a repeat
		Report("org-d", "sig-2", T0.Add(time.Hour)),   // another signature
		Report("org-e", "", T0.Add(time.Hour)),        // no signature
		{Org: "org-f", Label: "other", Text: "x", Signature: "sig-1", Actor: "a", CreatedAt: T0.Add(time.Hour)},
	} {
		_, _, err := s.AddReport(ctx(t), r)
		must(t, err)
	}
	tests := []struct {
		label, sig string
		since      time.Time
		want       []string
	}{
		{"img", "sig-1", T0, []string{"org-a", "org-b"}},
		{"img", "sig-1", T0.Add(-time.Hour), []string{"org-a", "org-b", "org-c"}},
		{"img", "sig-1", T0.Add(90 * time.Minute), []string{"org-b"}},
		{"img", "sig-2", T0, []string{"org-d"}},
		{"img", "", T0, nil},
		{"other", "sig-1", T0, []string{"org-f"}},
		{"img", "sig-9", T0, nil},
	}
	for _, tt := range tests {
		got, err := s.ReportOrgs(ctx(t), tt.label, tt.sig, tt.since)
		must(t, err)
		if diff := cmp.Diff(tt.want, got, equateEmpty); diff != "" {
			t.Errorf("ReportOrgs(%s, %q, %v) (-want +got):\n%s", tt.label, tt.sig, tt.since, diff)
		}
	}
}

func escalation(key string) rollout.Escalation {
	return rollout.Escalation{Key: key, Label: "img", Signature: "sig-1", Template: "No module named '_sqlite3'",
		RolloutID: "r-1", Version: "v2", Orgs: 3, Action: rollout.EscalateHalt, CreatedAt: T0}
}

// testEscalation: the first AddEscalation of a key records it with its
// audit entry; a repeat changes nothing and writes no entry.
func testEscalation(t *testing.T, s rollout.Store) {
	key := rollout.EscalationKey("img", "sig-1", "r-1")
	_, err := s.GetEscalation(ctx(t), key)
	wantErr(t, "GetEscalation before any", err, rollout.ErrNotFound)
	want := escalation(key)
	added, err := s.AddEscalation(ctx(t), want, Audit("report.escalate", "rollout/r-1"))
	must(t, err)
	if !added {
		t.Fatal("first AddEscalation: false, want true")
	}
	again := want
	again.Orgs, again.Action = 4, rollout.EscalateAlert
	added, err = s.AddEscalation(ctx(t), again, Audit("report.escalate", "rollout/r-1"))
	must(t, err)
	if added {
		t.Error("repeated AddEscalation: true, want false")
	}
	got, err := s.GetEscalation(ctx(t), key)
	must(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetEscalation (-want +got):\n%s", diff)
	}
	n := 0
	for _, a := range allAudit(t, s) {
		if a.Action == "report.escalate" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d report.escalate audit entries, want 1", n)
	}
	for name, e := range map[string]rollout.Escalation{
		"no key":       {Label: "img", Signature: "s"},
		"no label":     {Key: "k", Signature: "s"},
		"no signature": {Key: "k", Label: "img"},
	} {
		_, err := s.AddEscalation(ctx(t), e, Audit("report.escalate", "image/img"))
		wantErr(t, "AddEscalation with "+name, err, rollout.ErrInvalid)
	}
}

// testEscalationRace: of writers racing on one key exactly one wins.
func testEscalationRace(t *testing.T, s rollout.Store) {
	key := rollout.EscalationKey("img", "sig-1", "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	var errs []error
	for range 8 {
		wg.Go(func() {
			added, err := s.AddEscalation(ctx(t), escalation(key), Audit("report.escalate", "image/img"))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if added {
				wins++
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if wins != 1 {
		t.Errorf("%d racing AddEscalations won, want 1", wins)
	}
}

// keyed is Report with an idempotency key.
func keyed(org, key string, at time.Time) rollout.Report {
	r := Report(org, "sig-1", at)
	r.IdempotencyKey = key
	return r
}

// testReportKey: a report sent again under its org's idempotency key is
// not stored again and comes back as first stored, whoever sends it when;
// the key with a different report is ErrKeyReused (a conflict) and stores
// nothing; another org's key of the same name is another report.
func testReportKey(t *testing.T, s rollout.Store) {
	first, added, err := s.AddReport(ctx(t), keyed("org-a", "k-1", T0))
	must(t, err)
	if !added || first.ID == 0 || first.IdempotencyKey != "k-1" {
		t.Fatalf("first AddReport: %+v, %t; want it added with its key", first, added)
	}
	// The retry of another token of org-a, a minute later, signed anew
	// (the miner may have learnt meanwhile): the same report.
	retry := keyed("org-a", "k-1", T0.Add(time.Minute))
	retry.Actor, retry.Signature, retry.Template, retry.Known = "token:org-a-2", "sig-9", "other", false
	got, added, err := s.AddReport(ctx(t), retry)
	must(t, err)
	if added {
		t.Error("retried AddReport: true, want false")
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("retried AddReport returned (-first +got):\n%s", diff)
	}
	for name, mut := range map[string]func(r *rollout.Report){
		"another text":    func(r *rollout.Report) { r.Text += "and more" },
		"another label":   func(r *rollout.Report) { r.Label = "other" },
		"another version": func(r *rollout.Report) { r.Version = "v3" },
		"another job":     func(r *rollout.Report) { r.JobID = "job-2" },
		"no version":      func(r *rollout.Report) { r.Version = "" },
	} {
		r := keyed("org-a", "k-1", T0.Add(time.Hour))
		mut(&r)
		_, added, err := s.AddReport(ctx(t), r)
		if !errors.Is(err, rollout.ErrKeyReused) || !errors.Is(err, rollout.ErrConflict) || added {
			t.Errorf("AddReport of %s under a used key: %t, %v; want ErrKeyReused, a conflict", name, added, err)
		} else if !strings.Contains(err.Error(), `"k-1"`) {
			t.Errorf("AddReport of %s under a used key: %q, want the key named", name, err)
		}
	}
	other, added, err := s.AddReport(ctx(t), keyed("org-b", "k-1", T0))
	must(t, err)
	if !added || other.ID == first.ID {
		t.Errorf("org-b's report under org-a's key name: %+v, %t; want a report of its own", other, added)
	}
	second, added, err := s.AddReport(ctx(t), keyed("org-a", "k-2", T0))
	must(t, err)
	if !added || second.ID == first.ID {
		t.Errorf("org-a's report under a new key: %+v, %t; want a new report", second, added)
	}
	want := []rollout.Report{second, other, first}
	if diff := cmp.Diff(want, allReports(t, s, rollout.ReportFilter{})); diff != "" {
		t.Errorf("ListReports (-want +got):\n%s", diff)
	}
	orgs, err := s.ReportOrgs(ctx(t), "img", "sig-1", T0)
	must(t, err)
	if diff := cmp.Diff([]string{"org-a", "org-b"}, orgs); diff != "" {
		t.Errorf("ReportOrgs (-want +got):\n%s", diff)
	}
}

// testReportKeyRace: of writers racing on one org and key exactly one
// stores a report; those that sent the same report get it back, the
// others ErrKeyReused.
func testReportKeyRace(t *testing.T, s rollout.Store) {
	type result struct {
		sent  string
		got   rollout.Report
		added bool
		err   error
	}
	var wg sync.WaitGroup
	results := make([]result, 12)
	for i := range results {
		wg.Go(func() {
			r := keyed("org-a", "k-race", T0)
			if i%3 == 2 {
				r.Text = "a different report under the same key"
			}
			got, added, err := s.AddReport(ctx(t), r)
			results[i] = result{r.Text, got, added, err}
		})
	}
	wg.Wait()
	var winner *result
	for i, r := range results {
		if r.added {
			if winner != nil {
				t.Fatalf("two racing AddReports stored a report: %d and %d", winner.got.ID, r.got.ID)
			}
			winner = &results[i]
		}
	}
	if winner == nil {
		t.Fatalf("no racing AddReport stored the report: %+v", results)
	}
	for i, r := range results {
		switch {
		case r.added:
		case r.sent == winner.sent && (r.err != nil || r.got.ID != winner.got.ID):
			t.Errorf("writer %d sent the stored report: %d, %v; want report %d back", i, r.got.ID, r.err, winner.got.ID)
		case r.sent != winner.sent && !errors.Is(r.err, rollout.ErrKeyReused):
			t.Errorf("writer %d sent another report: %v; want ErrKeyReused", i, r.err)
		}
	}
	if got := allReports(t, s, rollout.ReportFilter{}); len(got) != 1 {
		t.Errorf("%d reports stored, want 1", len(got))
	}
}
