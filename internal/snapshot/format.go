package snapshot

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/version"
)

// Formats are the ways a snapshot is written: "json" (the contract),
// "table" (a summary for a terminal) and "markdown" (a software report).
var Formats = report.Formats[*Snapshot]{
	{Name: report.JSON, Write: Encode},
	{Name: report.Table, Write: WriteTable},
	{Name: report.Markdown, Aliases: []string{"md"}, Write: WriteMarkdown},
}

// Summary counts what a snapshot holds, for people.
type Summary struct {
	Packages, Runtimes, Tools int
	Modules, ModulesNotOK     int
	PackagesByType            map[string]int
}

// Summarize counts a snapshot's contents.
func (s *Snapshot) Summarize() Summary {
	sum := Summary{Packages: len(s.Packages), Runtimes: len(s.Runtimes), Tools: len(s.Tools), PackagesByType: map[string]int{}}
	for _, p := range s.Packages {
		sum.PackagesByType[p.Type]++
	}
	for _, r := range s.Runtimes {
		for _, m := range r.Modules {
			sum.Modules++
			if m.Status != StatusOK {
				sum.ModulesNotOK++
			}
		}
	}
	return sum
}

// WriteTable writes a short summary for a terminal: the OS, each runtime
// with its module health, and every module that is not ok with its evidence.
func WriteTable(w io.Writer, s *Snapshot) error {
	tw := report.NewTable(w)
	sum := s.Summarize()
	fmt.Fprintf(tw, "SOURCE\t%s\n", s.Source)
	fmt.Fprintf(tw, "OS\t%s\n", report.OrDash(osName(s.OS)))
	fmt.Fprintf(tw, "EXEC\t%s\n", s.Exec)
	fmt.Fprintf(tw, "PACKAGES\t%d%s\n", sum.Packages, byType(sum.PackagesByType))
	fmt.Fprintf(tw, "TOOLS\t%d\n", sum.Tools)
	fmt.Fprintf(tw, "\nRUNTIME\tVERSION\tPATH\tORIGIN\tMODULES\tNOT OK\n")
	runtimes := byVersion(s.Runtimes)
	for _, r := range runtimes {
		notOK := 0
		for _, m := range r.Modules {
			if m.Status != StatusOK {
				notOK++
			}
		}
		mods := "-"
		if len(r.Modules) > 0 {
			mods = fmt.Sprint(len(r.Modules))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", r.Kind, r.Version, r.Path, report.OrDash(r.Origin), mods, notOK)
	}
	var problems [][4]string
	for _, r := range runtimes {
		for _, m := range r.Modules {
			if m.Status != StatusOK {
				problems = append(problems, [4]string{r.Kind + "@" + r.Version, m.Name, m.Status, evidence(m)})
			}
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(tw, "\nRUNTIME\tMODULE\tSTATUS\tEVIDENCE\n")
		for _, p := range problems {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p[0], p[1], p[2], p[3])
		}
	}
	for _, warning := range s.Warnings {
		fmt.Fprintf(tw, "\nWARNING\t%s\n", warning)
	}
	return tw.Flush()
}

// byVersion orders runtimes as people read them: by kind, then version in
// the runtime's own order (3.6 before 3.10), then path. The JSON keeps its
// canonical order (Normalize); only the renderings use this one.
func byVersion(rts []Runtime) []Runtime {
	out := slices.Clone(rts)
	slices.SortStableFunc(out, func(a, b Runtime) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind),
			version.Compare(version.SchemeForRuntime(a.Kind), a.Version, b.Version),
			cmp.Compare(a.Path, b.Path))
	})
	return out
}

func evidence(m Module) string {
	e := m.Error
	if e == "" && len(m.MissingLibraries) > 0 {
		e = "missing " + strings.Join(m.MissingLibraries, ", ")
	}
	// Not report.FirstLine, which also trims the line's end: these
	// tables and reports keep the bytes they have always had.
	first, _, _ := strings.Cut(strings.TrimSpace(e), "\n")
	return report.OrDash(first)
}

// WriteMarkdown writes a software report in the spirit of the hosted runner
// images' READMEs: the OS, runtimes with their versions, tools with theirs,
// package counts, and every standard-library module that is not usable.
func WriteMarkdown(w io.Writer, s *Snapshot) error {
	var b strings.Builder
	sum := s.Summarize()
	title := osName(s.OS)
	if title == "" {
		title = s.Source
	}
	fmt.Fprintf(&b, "# %s\n\n", report.MDText(title))
	fmt.Fprintf(&b, "- Source: `%s`\n", s.Source)
	if s.Image != nil && s.Image.Digest != "" {
		fmt.Fprintf(&b, "- Image digest: `%s`\n", s.Image.Digest)
	}
	if s.Architecture != "" {
		fmt.Fprintf(&b, "- Architecture: %s\n", s.Architecture)
	}
	fmt.Fprintf(&b, "- Scanned: %s by %s %s (programs run: %s)\n", s.ScannedAt.Format("2006-01-02 15:04:05Z07:00"), s.Scanner.Name, report.OrDash(s.Scanner.Version), s.Exec)
	fmt.Fprintf(&b, "- OS packages: %d%s\n\n", sum.Packages, byType(sum.PackagesByType))

	runtimes := byVersion(s.Runtimes)
	if len(runtimes) > 0 {
		b.WriteString("## Runtimes\n\n| Runtime | Version | Path | Standard library |\n|---|---|---|---|\n")
		for _, r := range runtimes {
			lib := "-"
			if len(r.Modules) > 0 {
				notOK := 0
				for _, m := range r.Modules {
					if m.Status != StatusOK {
						notOK++
					}
				}
				lib = fmt.Sprintf("%d modules", len(r.Modules))
				if notOK > 0 {
					lib += fmt.Sprintf(", **%d not ok**", notOK)
				}
			}
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s |\n", r.Kind, report.MDText(r.Version), r.Path, lib)
		}
		b.WriteString("\n")
	}
	var problems []string
	for _, r := range runtimes {
		for _, m := range r.Modules {
			if m.Status != StatusOK {
				problems = append(problems, fmt.Sprintf("| %s %s | `%s` | %s | %s |\n", r.Kind, report.MDText(r.Version), m.Name, m.Status, report.MDText(evidence(m))))
			}
		}
	}
	if len(problems) > 0 {
		b.WriteString("## Standard-library modules that are not ok\n\n| Runtime | Module | Status | Evidence |\n|---|---|---|---|\n")
		for _, p := range problems {
			b.WriteString(p)
		}
		b.WriteString("\n")
	}
	var versioned []Tool
	for _, t := range s.Tools {
		if t.Version != "" {
			versioned = append(versioned, t)
		}
	}
	if len(versioned) > 0 {
		b.WriteString("## Tools\n\n| Tool | Version | Path |\n|---|---|---|\n")
		for _, t := range versioned {
			fmt.Fprintf(&b, "| %s | %s | `%s` |\n", report.MDText(t.Name), report.MDText(t.Version), t.Path)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d executables on PATH in all.\n", len(s.Tools))
	if len(s.Warnings) > 0 {
		b.WriteString("\n## Warnings\n\n")
		for _, warning := range s.Warnings {
			fmt.Fprintf(&b, "- %s\n", report.MDText(warning))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func osName(o OS) string {
	if o.PrettyName != "" {
		return o.PrettyName
	}
	return strings.TrimSpace(o.ID + " " + o.VersionID)
}

func byType(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, t := range []string{PackageDeb, PackageRPM, PackageAPK} {
		if n := m[t]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", t, n))
		}
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
