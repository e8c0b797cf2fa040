package check

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// systemKind is the runtime kind the scan gives a root filesystem's system
// essentials (runtimes.KindSystem; check never imports the scan).
const systemKind = "system"

// runtimeParts is the automatic evidence for a runtime other than Python:
// its standard parts (modules, trust store, capabilities, tools) as the scan
// found them. The list of parts comes from the runtime itself or from lists
// generated from real builds, so every part not ok fails, whoever built the
// runtime: unlike Debian's Python, no distribution splits these runtimes'
// standard parts into optional packages. One failed part is one line.
func runtimeParts(rt *snapshot.Runtime, id string, ch *diff.Changes) []Result {
	title := fmt.Sprintf("%s %s at %s", rt.Kind, rt.Version, rt.Path)
	if rt.Origin != "" {
		title += " (" + rt.Origin + ")"
	}
	kind, noun := "module", "standard"
	if rt.Kind == systemKind {
		// The image's essentials (CA bundle, locale, tzdata, curl, git's
		// HTTPS helper) are checks of their own kind, not a language's
		// modules; the scan reports them as one entry at /.
		kind, noun, title = systemKind, "system", "system essentials"
	}
	var out []Result
	ok := 0
	for _, m := range rt.Modules {
		r := Result{ID: id + "/module/" + m.Name, Origin: OriginAutomatic, Kind: kind, Status: StatusFail, Name: title}
		switch {
		case m.Status == snapshot.StatusOK:
			ok++
			continue
		case m.Status == snapshot.StatusMissing:
			r.Message = "missing: " + cmp.Or(report.FirstLine(m.Error), "not shipped by this build")
			declare(&r, ch, diff.ClassRemoved, diff.ClassBroken)
		default:
			msg := m.Status
			if !failing[m.Status] {
				msg = "unknown status " + strconv.Quote(m.Status)
			}
			if len(m.MissingLibraries) > 0 {
				msg += ": missing shared " + report.Plural(len(m.MissingLibraries), "library", "libraries") + " " + strings.Join(m.MissingLibraries, ", ")
				if m.Error != "" {
					r.Evidence = append(r.Evidence, m.Error)
				}
			} else if m.Error != "" {
				msg += ": " + report.FirstLine(m.Error)
				if rest := report.RestLines(m.Error); rest != "" {
					r.Evidence = append(r.Evidence, rest)
				}
			}
			r.Message = msg
			declare(&r, ch, diff.ClassBroken)
		}
		out = append(out, r)
	}
	out = append(out, Result{ID: id + "/modules", Origin: OriginAutomatic, Kind: kind, Status: StatusPass, Name: title,
		Message: fmt.Sprintf("%d %s %s ok at %s", ok, noun, report.Plural(ok, "part", "parts"), rt.Path)})
	return out
}
