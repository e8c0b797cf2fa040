package diff

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/internal/junit"
	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/version"
)

// Formats are the ways Report.Write writes a report.
var Formats = report.Formats[*Report]{
	{Name: report.Table, Write: func(w io.Writer, r *Report) error { return r.writeTable(w) }},
	{Name: report.JSON, Write: report.WriteJSON[*Report]},
	{Name: report.Markdown, Aliases: []string{"md"}, Write: func(w io.Writer, r *Report) error { return r.writeMarkdown(w) }},
	{Name: report.JUnit, Write: func(w io.Writer, r *Report) error { return r.writeJUnit(w) }},
}

// Write renders the report: "table" (for people, failures first), "json"
// (the contract in SCHEMA.md), "markdown" (release notes) or "junit" (CI
// test results). An empty format means "table".
func (r *Report) Write(w io.Writer, format string) error {
	name := cmp.Or(format, report.Table)
	if err := Formats.Check(name); err != nil {
		// diff's own wording, older than report's, which callers match.
		return fmt.Errorf("%w %q; use one of %s", report.ErrUnknownFormat, format, strings.Join(Formats.Names(), ", "))
	}
	if err := Formats.Write(w, name, r); err != nil {
		return fmt.Errorf("write %s report: %w", format, err)
	}
	return nil
}

// ordered returns the changes with unexpected ones first, then declared
// ones, then the rest, each group in display order.
func (r *Report) ordered() []*Change {
	all := r.display()
	out := make([]*Change, 0, len(all))
	for _, pick := range []func(*Change) bool{
		func(c *Change) bool { return c.Unexpected },
		func(c *Change) bool { return !c.Unexpected && c.Declared != nil },
		func(c *Change) bool { return !c.Unexpected && c.Declared == nil },
	} {
		for _, c := range all {
			if pick(c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// display is the changes as people read them: report order, except that
// runtimes of one kind come in version order (python@3.6 before
// python@3.10), which the JSON's order by ID is not.
func (r *Report) display() []*Change {
	out := make([]*Change, len(r.Changes))
	for i := range r.Changes {
		out[i] = &r.Changes[i]
	}
	slices.SortStableFunc(out, func(a, b *Change) int {
		if c := cmp.Compare(sectionRank[a.Section], sectionRank[b.Section]); c != 0 {
			return c
		}
		ka, sa, ra, oka := runtimeSeries(a.ID)
		kb, sb, rb, okb := runtimeSeries(b.ID)
		if oka && okb {
			if c := cmp.Or(cmp.Compare(ka, kb), version.Compare(version.Natural, sa, sb), cmp.Compare(ra, rb)); c != 0 {
				return c
			}
		}
		return compareChanges(*a, *b)
	})
	return out
}

// runtimeSeries takes "runtime/python@3.11[/usr]/module/ssl" apart into
// its kind, series and the rest.
func runtimeSeries(id string) (kind, series, rest string, ok bool) {
	after, ok := strings.CutPrefix(id, "runtime/")
	if !ok {
		return "", "", "", false
	}
	kind, after, ok = strings.Cut(after, "@")
	if !ok {
		return "", "", "", false
	}
	end := strings.IndexAny(after, "[/")
	if end < 0 {
		end = len(after)
	}
	return kind, after[:end], after[end:], true
}

// value is what a table shows for one side of a change.
func (c *Change) value(s *State) string {
	if s == nil {
		return ""
	}
	switch {
	case c.Class == ClassBroken || c.Class == ClassFixed || c.Section == SectionModules:
		if s.Status != "" {
			return s.Status
		}
	case c.Class == ClassChanged && c.Old != nil && c.New != nil && c.Old.Version == c.New.Version && c.Old.Status == c.New.Status:
		return s.Path // moved
	}
	if s.Version != "" {
		return s.Version
	}
	if s.Status != "" {
		return s.Status
	}
	return s.Path
}

// transition is "old → new" in a form that reads on one line.
func (c *Change) transition() string {
	switch c.Class {
	case ClassAdded:
		return "→ " + report.OrDash(c.value(c.New))
	case ClassRemoved:
		return report.OrDash(c.value(c.Old)) + " → removed"
	}
	return report.OrDash(c.value(c.Old)) + " → " + report.OrDash(c.value(c.New))
}

// evidence is the one-line explanation shown next to a change.
func (c *Change) evidence() string {
	var parts []string
	if e := report.LastLine(c.Evidence); e != "" {
		parts = append(parts, e)
	}
	if len(c.MissingLibraries) > 0 {
		parts = append(parts, "missing "+strings.Join(c.MissingLibraries, ", "))
	}
	return strings.Join(parts, "; ")
}

func (c *Change) where() string {
	if c.New != nil && c.New.Path != "" {
		return c.New.Path
	}
	if c.Old != nil {
		return c.Old.Path
	}
	return ""
}

func (d *Declaration) String() string {
	s := fmt.Sprintf("%s:%d %s %s", d.File, d.Line, d.Action, d.Pattern)
	if d.Reason != "" {
		s += ": " + report.LastLine(d.Reason)
	}
	return s
}

func (r *Report) verdictLine() string {
	total := len(r.Changes)
	if r.Failed() {
		return fmt.Sprintf("FAIL: %d unexpected %s (%d declared, %d in all)", r.Summary.Unexpected, report.Plural(r.Summary.Unexpected, "change", "changes"), r.Summary.Declared, total)
	}
	if total == 0 {
		return "PASS: no differences"
	}
	return fmt.Sprintf("PASS: no unexpected change (%d declared, %d in all)", r.Summary.Declared, total)
}

func (r *Report) writeTable(w io.Writer) error {
	tw := report.NewTable(w)
	for _, c := range r.ordered() {
		mark := c.Class
		switch {
		case c.Unexpected:
			mark = "UNEXPECTED"
		case c.Declared != nil && failing(c.Class):
			mark = "declared"
		}
		ev := c.evidence()
		if c.Section == SectionRuntimes || c.Section == SectionTools {
			ev = joinNonEmpty("; ", c.where(), ev)
		}
		if c.Declared != nil {
			ev = joinNonEmpty("; ", ev, "declared "+c.Declared.String())
		}
		// The last cell is not tab-terminated, so that tabwriter does
		// not pad lines without evidence with trailing blanks.
		if ev == "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, c.ID, c.transition())
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, c.ID, c.transition(), ev)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range r.Warnings {
		if _, err := fmt.Fprintf(w, "warning: %s\n", warn); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, r.verdictLine())
	return err
}

func joinNonEmpty(sep string, parts ...string) string {
	parts = slices.DeleteFunc(parts, func(s string) bool { return s == "" })
	return strings.Join(parts, sep)
}

// sectionTitle is a section's heading in release notes.
var sectionTitle = map[string]string{
	SectionOS:              "Operating system",
	SectionPackages:        "OS packages",
	SectionRuntimes:        "Runtimes",
	SectionModules:         "Standard library modules",
	SectionRuntimePackages: "Runtime packages",
	SectionTools:           "Tools",
}

// mdCell escapes text for a markdown table cell: as a code span's text
// (backticks as quotes) wherever it stands, carriage returns as blanks.
func mdCell(s string) string {
	return report.MDCode(strings.ReplaceAll(s, "\r", " "))
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + mdCell(s) + "`"
}

func (r *Report) writeMarkdown(w io.Writer) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	if r.Failed() {
		p("# ❌ Image gate fails: %d unexpected %s\n\n", r.Summary.Unexpected, report.Plural(r.Summary.Unexpected, "change", "changes"))
	} else {
		p("# ✅ Image gate passes\n\n")
	}
	// The parenthesis names the OS, and is left out when a side has none
	// (a tool folder), rather than showing an unexplained "(-)".
	side := func(s Side) string {
		if s.OS == "" {
			return code(s.Source)
		}
		return code(s.Source) + " (OS: " + mdCell(s.OS) + ")"
	}
	p("Comparing %s with %s.\n\n", side(r.Old), side(r.New))
	cl := r.Summary.Classes
	p("%d added, %d removed, %d upgraded, %d downgraded, %d broken, %d fixed, %d changed; %d declared.\n",
		cl[ClassAdded], cl[ClassRemoved], cl[ClassUpgraded], cl[ClassDowngraded], cl[ClassBroken], cl[ClassFixed], cl[ClassChanged], r.Summary.Declared)

	table := func(title string, head []string, rows [][]string) {
		if len(rows) == 0 {
			return
		}
		p("\n%s\n\n| %s |\n|%s\n", title, strings.Join(head, " | "), strings.Repeat("---|", len(head)))
		for _, row := range rows {
			p("| %s |\n", strings.Join(row, " | "))
		}
	}
	var unexpected, declared [][]string
	for _, c := range r.ordered() {
		switch {
		case c.Unexpected:
			unexpected = append(unexpected, []string{c.Class, code(c.ID), mdCell(report.OrDash(c.value(c.Old))), mdCell(report.OrDash(c.value(c.New))), mdCell(c.evidence())})
		case c.Declared != nil:
			declared = append(declared, []string{c.Class, code(c.ID), mdCell(report.OrDash(c.value(c.Old))), mdCell(report.OrDash(c.value(c.New))),
				fmt.Sprintf("%s:%d", mdCell(c.Declared.File), c.Declared.Line), mdCell(report.LastLine(c.Declared.Reason))})
		}
	}
	table("## Unexpected", []string{"Change", "Entry", "Was", "Now", "Evidence"}, unexpected)
	table("## Declared", []string{"Change", "Entry", "Was", "Now", "Declared at", "Reason"}, declared)

	for _, sec := range Sections {
		var added, removed, updated [][]string
		for _, c := range r.display() {
			if c.Section != sec {
				continue
			}
			switch c.Class {
			case ClassAdded:
				added = append(added, []string{code(c.ID), mdCell(c.value(c.New)), mdCell(c.where())})
			case ClassRemoved:
				removed = append(removed, []string{code(c.ID), mdCell(c.value(c.Old)), mdCell(c.where())})
			default:
				updated = append(updated, []string{code(c.ID), c.Class, mdCell(c.value(c.Old)), mdCell(c.value(c.New)), mdCell(c.evidence())})
			}
		}
		if len(added)+len(removed)+len(updated) == 0 {
			continue
		}
		p("\n## %s\n", sectionTitle[sec])
		table("### Added", []string{"Entry", "Version", "Path"}, added)
		table("### Removed", []string{"Entry", "Version", "Path"}, removed)
		table("### Updated", []string{"Entry", "Change", "Was", "Now", "Evidence"}, updated)
	}
	if len(r.Warnings) > 0 {
		p("\n## Warnings\n\n")
		for _, warn := range r.Warnings {
			p("- %s\n", mdCell(warn))
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

// writeJUnit writes one failed testcase per unexpected change, one passed
// testcase per section (its output lists the section's expected changes) and
// one skipped testcase per stale declaration, which CI systems show as a
// warning without failing the run.
func (r *Report) writeJUnit(w io.Writer) error {
	s := junit.Suite{Name: "imagegate diff", Time: "0"}
	for _, c := range r.ordered() {
		if !c.Unexpected {
			continue
		}
		text := fmt.Sprintf("%s %s: %s", c.ID, c.Class, c.transition())
		if ev := c.evidence(); ev != "" {
			text += "\n" + ev
		}
		text += "\nDeclare it in the changes file if it is intended, e.g.\n  - " + classAction(c.Class) + ": " + c.ID
		s.Cases = append(s.Cases, junit.Case{
			Name: c.ID + " " + c.Class, Classname: "imagegate.diff." + c.Section, Time: "0",
			Failure: &junit.Message{Message: joinNonEmpty(": ", c.ID+" "+c.Class, c.evidence()), Type: c.Class, Text: text},
		})
		s.Failures++
	}
	for _, sec := range Sections {
		var out strings.Builder
		n := 0
		for _, c := range r.display() {
			if c.Section != sec || c.Unexpected {
				continue
			}
			n++
			fmt.Fprintf(&out, "%s %s %s", c.Class, c.ID, c.transition())
			if c.Declared != nil {
				fmt.Fprintf(&out, " (declared %s)", c.Declared.String())
			}
			out.WriteByte('\n')
		}
		if n == 0 {
			out.WriteString("no expected changes\n")
		}
		s.Cases = append(s.Cases, junit.Case{Name: sectionTitle[sec], Classname: "imagegate.diff." + sec, Time: "0", SystemOut: out.String()})
	}
	for _, d := range r.Stale {
		s.Cases = append(s.Cases, junit.Case{
			Name: fmt.Sprintf("stale declaration %s %s", d.Action, d.Pattern), Classname: "imagegate.diff.declarations", Time: "0",
			Skipped: &junit.Message{Message: fmt.Sprintf("%s:%d: %s %s matched no change; remove it", d.File, d.Line, d.Action, d.Pattern)},
		})
		s.Skipped++
	}
	s.Tests = len(s.Cases)
	noErrors := 0
	return junit.Write(w, junit.Suites{Name: "imagegate diff", Tests: s.Tests, Failures: s.Failures, Errors: &noErrors,
		Skipped: s.Skipped, Suites: []junit.Suite{s}})
}

func classAction(class string) string {
	for a, c := range actionClass {
		if c == class {
			return a
		}
	}
	return class
}
