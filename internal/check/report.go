package check

import (
	"cmp"
	"fmt"
	"io"
	"strings"

	"github.com/imagegate/imagegate/internal/junit"
	"github.com/imagegate/imagegate/internal/report"
)

// Formats are the ways Report.Write writes a report.
var Formats = report.Formats[*Report]{
	{Name: report.Table, Write: func(w io.Writer, r *Report) error { return r.writeTable(w) }},
	{Name: report.JSON, Write: report.WriteJSON[*Report]},
	{Name: report.Markdown, Write: func(w io.Writer, r *Report) error { return r.writeMarkdown(w) }},
	{Name: report.JUnit, Write: func(w io.Writer, r *Report) error { return r.writeJUnit(w) }},
}

// Write renders the report as "table" (for people), "json" (the documented
// contract), "markdown" (for pull requests and job summaries) or "junit"
// (for CI test tabs). Failures come first, each with its evidence. An empty
// format means "table".
func (r *Report) Write(w io.Writer, format string) error {
	name := cmp.Or(format, report.Table)
	if err := Formats.Check(name); err != nil {
		return err
	}
	if err := Formats.Write(w, name, r); err != nil {
		return fmt.Errorf("write check report: %w", err)
	}
	return nil
}

func (r *Report) headline() string {
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL"
	}
	s := r.Summary
	return fmt.Sprintf("%s: %d failed, %d declared, %d info, %d passed", verdict, s.Failed, s.Declared, s.Info, s.Passed)
}

// label is how a result is named for people: its ID, and for spec tests
// the test's own name too.
func (res *Result) label() string {
	if res.Origin == OriginSpec && res.Name != "" {
		name := res.Name
		if res.Kind == "command" || res.Kind == "file" {
			name = fmt.Sprintf("%q", name) // the spec author's words
		}
		return strings.TrimPrefix(res.ID, "spec/") + " " + name
	}
	if res.Origin == OriginSpec {
		return strings.TrimPrefix(res.ID, "spec/")
	}
	return res.ID
}

// details are the lines shown under a result.
func (res *Result) details() []string {
	var out []string
	if res.Origin != OriginSpec && res.Name != "" && res.Status != StatusPass {
		out = append(out, res.Name)
	}
	if res.Reason != "" {
		out = append(out, "declared: "+res.Reason)
	}
	for _, e := range res.Evidence {
		out = append(out, strings.Split(e, "\n")...)
	}
	return out
}

func (r *Report) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "imagegate check %s: %s\n\n", r.Source, r.headline())
	tw := report.NewTable(w)
	fmt.Fprintln(tw, "STATUS\tCHECK\tRESULT")
	for i := range r.Results {
		res := &r.Results[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(res.Status), report.JoinLines(res.label()), report.JoinLines(res.Message))
		for _, d := range res.details() {
			fmt.Fprintf(tw, "\t\t  %s\n", report.JoinLines(d))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Baseline != nil {
		fmt.Fprintf(w, "\nBaseline diff:\n")
		if err := r.Baseline.Write(w, report.Table); err != nil {
			return err
		}
	}
	return nil
}

var mdSections = []struct{ status, title string }{
	{StatusFail, "Failures"},
	{StatusDeclared, "Declared changes"},
	{StatusInfo, "Notes"},
	{StatusPass, "Passed"},
}

func (r *Report) writeMarkdown(w io.Writer) error {
	icon := "✅"
	if r.Failed() {
		icon = "❌"
	}
	fmt.Fprintf(w, "# %s imagegate check: %s\n\n", icon, r.headline())
	fmt.Fprintf(w, "Image: `%s`\n", report.MDCode(r.Source))
	for _, sec := range mdSections {
		n := 0
		for i := range r.Results {
			res := &r.Results[i]
			if res.Status != sec.status {
				continue
			}
			if n == 0 {
				fmt.Fprintf(w, "\n## %s\n\n", sec.title)
				if sec.status == StatusPass {
					// Long and rarely read: folded in pull request comments.
					fmt.Fprintf(w, "<details><summary>%d passed</summary>\n\n", r.Summary.Passed)
				}
				fmt.Fprintf(w, "| Check | Result | Evidence |\n|---|---|---|\n")
			}
			n++
			fmt.Fprintf(w, "| `%s` | %s | %s |\n", report.MDCode(res.label()), report.MDHTML(res.Message), report.MDHTML(strings.Join(res.details(), "\n")))
		}
		if n > 0 && sec.status == StatusPass {
			fmt.Fprintf(w, "\n</details>\n")
		}
	}
	if r.Baseline != nil {
		fmt.Fprintf(w, "\n## Baseline diff\n\n")
		if err := r.Baseline.Write(w, report.Markdown); err != nil {
			return err
		}
	}
	return nil
}

// writeJUnit writes one testsuite per origin and one testcase per result:
// failures fail, info results are skipped (they never fail the gate but
// deserve a look), declared ones pass with their reason in system-out.
func (r *Report) writeJUnit(w io.Writer) error {
	root := junit.Suites{Name: "imagegate check " + r.Source}
	for _, origin := range []string{OriginAutomatic, OriginBaseline, OriginSpec} {
		s := junit.Suite{Name: origin}
		for i := range r.Results {
			res := &r.Results[i]
			if res.Origin != origin {
				continue
			}
			c := junit.Case{Name: res.label(), Classname: "imagegate.check." + origin + "." + res.Kind}
			text := strings.Join(res.details(), "\n")
			switch res.Status {
			case StatusFail:
				c.Failure = &junit.Message{Message: res.Message, Type: res.Kind, Text: text}
				s.Failures++
			case StatusInfo:
				c.Skipped = &junit.Message{Message: res.Message, Text: text}
				s.Skipped++
			default:
				c.SystemOut = strings.TrimSpace(res.Message + "\n" + text)
			}
			s.Cases = append(s.Cases, c)
		}
		if len(s.Cases) == 0 {
			continue
		}
		s.Tests = len(s.Cases)
		root.Tests += s.Tests
		root.Failures += s.Failures
		root.Skipped += s.Skipped
		root.Suites = append(root.Suites, s)
	}
	return junit.Write(w, root)
}
