package check

import (
	"fmt"
	"path"
	"strings"

	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/report"
)

// baselineResults turns the diff against the baseline into evidence: each
// unexpected change fails, each declared one that would have failed is
// shown as declared, diff's warnings (stale declarations among them) are notes, and the rest (added,
// upgraded, fixed) stays in the embedded diff report.
func baselineResults(d *diff.Report) []Result {
	var out []Result
	total := 0
	for i := range d.Changes {
		c := &d.Changes[i]
		total++
		r := Result{ID: c.ID, Origin: OriginBaseline, Kind: "diff", Message: describeChange(c), declareAs: diff.ActionFor(c.Class)}
		if p := changePath(c); p != "" {
			r.Name = p
		}
		if c.Evidence != "" && !strings.Contains(r.Message, report.FirstLine(c.Evidence)) {
			r.Evidence = append(r.Evidence, c.Evidence)
		}
		switch {
		case c.Unexpected:
			r.Status = StatusFail
		case c.Declared != nil:
			r.Status = StatusDeclared
			r.Reason = c.Declared.Reason
			if r.Reason == "" {
				r.Reason = fmt.Sprintf("%s %s (%s:%d)", c.Declared.Action, c.Declared.Pattern, c.Declared.File, c.Declared.Line)
			}
		default:
			continue
		}
		out = append(out, r)
	}
	for _, w := range d.Warnings {
		out = append(out, Result{ID: "baseline/warning", Origin: OriginBaseline, Kind: "diff", Status: StatusInfo, Message: w})
	}
	msg := fmt.Sprintf("%d %s since %s, %d unexpected", total, report.Plural(total, "change", "changes"), d.Old.Source, d.Summary.Unexpected)
	status := StatusPass
	if d.Failed() {
		status = StatusFail
		msg = fmt.Sprintf("%d unexpected %s since %s", d.Summary.Unexpected, report.Plural(d.Summary.Unexpected, "change", "changes"), d.Old.Source)
		// The failures above carry the verdict; the summary only counts.
		return append(out, Result{ID: "baseline", Origin: OriginBaseline, Kind: "diff", Status: StatusInfo, Message: msg})
	}
	return append(out, Result{ID: "baseline", Origin: OriginBaseline, Kind: "diff", Status: status, Message: msg})
}

// describeChange says what happened in one line: "ok → import-error: No
// module named '_sqlite3'", "downgraded 3.0.15 → 3.0.11", "removed 2.39.5".
func describeChange(c *diff.Change) string {
	var o, n diff.State
	if c.Old != nil {
		o = *c.Old
	}
	if c.New != nil {
		n = *c.New
	}
	var b strings.Builder
	b.WriteString(c.Class)
	switch {
	case o.Status != "" && n.Status != "" && o.Status != n.Status:
		fmt.Fprintf(&b, ": %s → %s", o.Status, n.Status)
	case o.Version != "" && n.Version != "":
		fmt.Fprintf(&b, " %s → %s", o.Version, n.Version)
	case o.Version != "":
		fmt.Fprintf(&b, " (was %s)", o.Version)
	case n.Version != "":
		fmt.Fprintf(&b, " %s", n.Version)
	}
	if len(c.MissingLibraries) > 0 {
		fmt.Fprintf(&b, ": missing %s", strings.Join(c.MissingLibraries, ", "))
	} else if c.Evidence != "" {
		fmt.Fprintf(&b, ": %s", report.FirstLine(c.Evidence))
	}
	return b.String()
}

func changePath(c *diff.Change) string {
	if c.New != nil && c.New.Path != "" {
		return c.New.Path
	}
	if c.Old != nil {
		return c.Old.Path
	}
	return ""
}

// joinBaseline lists one cause once: a baseline change of something the
// automatic evidence already reports (sqlite3 ok → import-error), or of a
// cause folded into such a result (_sqlite3 removed), becomes a line of that
// result's evidence instead of a result of its own. The joined result fails
// if either did. The embedded diff report keeps every change.
func joinBaseline(auto, base []Result, folded map[string]string) []Result {
	owner := make(map[string]int, len(auto))
	for i := range auto {
		if auto[i].Status == StatusFail || auto[i].Status == StatusDeclared {
			owner[auto[i].ID] = i
		}
	}
	kept := make([]Result, 0, len(base))
	for _, b := range base {
		i, ok := -1, false
		if b.Status == StatusFail || b.Status == StatusDeclared {
			if i, ok = owner[b.ID]; !ok {
				i, ok = owner[folded[b.ID]]
			}
		}
		if !ok {
			kept = append(kept, b)
			continue
		}
		a := &auto[i]
		line := "baseline: " + b.Message
		if b.ID != a.ID {
			line = "baseline: " + path.Base(b.ID) + " " + b.Message
		}
		if b.Status == StatusDeclared {
			line += " (declared: " + b.Reason + ")"
		}
		a.Evidence = append(a.Evidence, line)
		if b.Status == StatusFail && a.Status == StatusDeclared {
			a.Status = StatusFail
			a.Evidence = append(a.Evidence, "declared for the automatic check ("+a.Reason+"), not for the baseline")
			a.Reason = ""
		}
	}
	return append(auto, kept...)
}
