package report

import "strings"

// OrDash is s, or "-" for an empty cell.
func OrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Plural is one when n is 1, else many.
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// FirstLine is the first line of s, without the blanks around it; the
// rest of a message (a traceback, a usage text) goes in the details.
func FirstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// RestLines is what follows FirstLine, trimmed; empty for one line.
func RestLines(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return ""
}

// LastLine keeps the last meaningful line of a multi-line message (Python
// puts the exception last), with control characters as blanks and at most
// 200 bytes, cut on a character boundary and marked with "…".
func LastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// JoinLines puts all of s on one table row, its line breaks shown as " ⏎ "
// so that nothing is hidden, carriage returns dropped.
func JoinLines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", " ⏎ ")
}

// OneLine puts s on one line for a terminal: every run of white space,
// line breaks included, becomes one blank.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
