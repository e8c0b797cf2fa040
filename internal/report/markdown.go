package report

import "strings"

// The Markdown escapes differ in what a cell may hold; each keeps a row on
// one line and a "|" from ending the cell.

var (
	mdText = strings.NewReplacer("|", `\|`, "\n", " ")
	mdCode = strings.NewReplacer("`", "'", "|", `\|`, "\n", " ")
	mdHTML = strings.NewReplacer("&", "&amp;", "|", `\|`, "\r", "", "\n", "<br>", "<", "&lt;", ">", "&gt;")
)

// MDText escapes plain text for a Markdown table cell or heading: pipes
// are escaped and line breaks become blanks.
func MDText(s string) string { return mdText.Replace(s) }

// MDCode escapes text for a code span (between backticks) in a table:
// like MDText, and backticks, which would end the span, become "'".
func MDCode(s string) string { return mdCode.Replace(s) }

// MDHTML escapes text for a cell that renderers treat as HTML (GitHub,
// GitLab): &, < and > are entities, line breaks are <br>, so multi-line
// evidence keeps its lines.
func MDHTML(s string) string { return mdHTML.Replace(s) }
