package signature

import (
	"strings"
	"unicode/utf8"
)

// MaxErrorText is how much of a failed job's log the server keeps (issue 7:
// "at most 8 KiB, cut at line boundaries from the end"). Extract reads no
// more than this.
const MaxErrorText = 8 << 10

// MaxMessage bounds the line Extract returns: the head of a line carries
// the error's class and the identifiers we keep; a 5 KiB minified stack
// line would only make every signature unique and the miner slow.
const MaxMessage = 1 << 10

// Tail returns the end of text, at most max bytes, starting at a line
// boundary: the longest suffix of whole lines that fits. When even the last
// line is longer than max, it returns that line's last max bytes, advanced
// to a UTF-8 boundary, so the result never exceeds max. max <= 0 yields "".
func Tail(text string, max int) string {
	if max <= 0 {
		return ""
	}
	if len(text) <= max {
		return text
	}
	cut := len(text) - max // the suffix text[cut:] fits
	if cut > 0 && text[cut-1] == '\n' {
		return text[cut:]
	}
	if nl := strings.IndexByte(text[cut:], '\n'); nl >= 0 && cut+nl+1 < len(text) {
		return text[cut+nl+1:]
	}
	// One line longer than max (or only its newline fits): keep its end.
	for cut < len(text) && !utf8.RuneStart(text[cut]) {
		cut++
	}
	return text[cut:]
}

// Extract returns the line of a failed job's log tail that says why it
// failed, cleaned of terminal colours and runner timestamps: the last error
// block's message. In order of preference, scanning from the end:
//
//  1. the last error line: a Python exception (the line after a traceback,
//     or pytest's "E   XxxError: ..."), "Error:"/"error:", ERROR, FAIL,
//     fatal:, npm ERR!, error[E…], Java "Exception in thread"/"Caused by:",
//     panic:, "command not found", missing shared libraries, OOM kills;
//  2. else the last exit-code or summary line ("Process completed with exit
//     code 1", "exited with code", "BUILD FAILED", bare FAIL);
//  3. else the last non-empty line.
//
// Summary lines are only a fallback because they say that a job failed,
// not why, and are the same for every failure of a tool: a signature made
// of them would merge unrelated regressions. Wrappers are peeled so that the
// same failure reads the same in every log format: pytest's "FAILED id -
// reason" yields the reason, "Caused by: X" and `Exception in thread "main"
// X` yield X. The traceback's last frame is not appended: it is the
// customer's code more often than not, and would split one regression
// into a signature per pipeline.
//
// The result is at most MaxMessage bytes; "" only when the text holds no
// non-blank line.
func Extract(errorText string) string {
	lines := strings.Split(Tail(errorText, MaxErrorText), "\n")
	for i, l := range lines {
		lines[i] = cleanLine(l)
	}
	var weak, last string
	for i := len(lines) - 1; i >= 0; i-- {
		t := strings.TrimSpace(lines[i])
		if t == "" {
			continue
		}
		if last == "" {
			last = t
		}
		k, msg, next := classify(lines, i)
		switch k {
		case kindStrong:
			return bound(msg)
		case kindWeak:
			if weak == "" {
				weak = msg
			}
		}
		i = next
	}
	if weak != "" {
		return bound(weak)
	}
	return bound(last)
}

type kind int

const (
	kindNone kind = iota
	kindWeak
	kindStrong
)

// classify decides what lines[i] is. next is the index the scan continues
// from (+1, since the caller decrements): blocks such as npm's are judged
// whole and skipped.
func classify(lines []string, i int) (k kind, msg string, next int) {
	raw := lines[i]
	t := strings.TrimSpace(raw)
	next = i
	switch {
	case isBoilerplate(t):
		return kindNone, "", next
	case t == "Traceback (most recent call last):":
		// The exception line is the first unindented line after the frames;
		// reached here only when its name did not look like an exception
		// (django's ImproperlyConfigured, pkg_resources.DistributionNotFound).
		for j := i + 1; j < len(lines); j++ {
			l := lines[j]
			if strings.TrimSpace(l) == "" || l[0] == ' ' || l[0] == '\t' {
				continue
			}
			return kindStrong, strings.TrimSpace(l), next
		}
		return kindWeak, t, next
	case isNPM(t):
		return npmBlock(lines, i)
	case t == "* What went wrong:":
		return gradleSection(lines, i)
	case isExitLine(t):
		return kindWeak, t, next
	}
	if e, ok := pytestE(t); ok {
		return kindStrong, e, next
	}
	if id, reason, ok := pytestSummary(t); ok {
		if reason == "" {
			return kindWeak, id, next
		}
		return kindStrong, reason, next
	}
	if s, ok := strings.CutPrefix(t, "Caused by: "); ok {
		return kindStrong, s, next
	}
	if s, ok := strings.CutPrefix(t, "Exception in thread "); ok {
		// `Exception in thread "main" java.lang.Foo: msg`: drop the thread.
		if _, after, ok := strings.Cut(s, "\" "); ok {
			return kindStrong, after, next
		}
		return kindStrong, t, next
	}
	if isExceptionLine(t) || hasErrorMarker(t) {
		return kindStrong, t, next
	}
	return kindNone, "", next
}

// cleanLine removes what the runner and the terminal add to a log line: the
// text a carriage return overwrote, ANSI escape sequences, GitHub's
// timestamp prefix and its ##[group]-style markers (##[error] reads
// "Error: ").
func cleanLine(l string) string {
	l = strings.TrimRight(l, "\r")
	if i := strings.LastIndexByte(l, '\r'); i >= 0 {
		l = l[i+1:] // a progress bar: what the terminal showed last
	}
	if strings.IndexByte(l, 0x1b) >= 0 {
		l = stripANSI(l)
	}
	l = stripTimestamp(l)
	if strings.HasPrefix(l, "##[") {
		// GitHub's raw log marks annotations; its web view and the step
		// log show "##[error]x" as "Error: x", so both forms mean the same.
		if s, ok := strings.CutPrefix(l, "##[error]"); ok {
			return "Error: " + s
		}
		if j := strings.IndexByte(l, ']'); j > 0 {
			l = l[j+1:]
		}
	}
	return l
}

// stripANSI removes CSI (ESC [ … final), OSC (ESC ] … BEL or ESC \) and
// two-byte escape sequences.
func stripANSI(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != 0x1b {
			b.WriteByte(c)
			i++
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch s[i] {
		case '[':
			i++
			for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
				i++
			}
			i++ // the final byte
		case ']':
			for i < len(s) && s[i] != 0x07 && !(s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\') {
				i++
			}
			if i < len(s) && s[i] == 0x1b {
				i++
			}
			i++
		default:
			i++
		}
	}
	return b.String()
}

// stripTimestamp removes a leading RFC 3339 UTC timestamp and the space
// after it, as GitHub Actions and GitLab prefix every raw log line:
// "2026-12-01T10:00:00.1234567Z ".
func stripTimestamp(l string) string {
	const layout = "0000-00-00T00:00:00"
	if len(l) < len(layout)+2 {
		return l
	}
	for i := 0; i < len(layout); i++ {
		if layout[i] == '0' {
			if !isDigit(l[i]) {
				return l
			}
		} else if l[i] != layout[i] {
			return l
		}
	}
	i := len(layout)
	if l[i] == '.' {
		i++
		for i < len(l) && isDigit(l[i]) {
			i++
		}
	}
	if i+1 < len(l) && l[i] == 'Z' && l[i+1] == ' ' {
		return l[i+2:]
	}
	if i+1 == len(l) && l[i] == 'Z' {
		return ""
	}
	return l
}

// isBoilerplate reports the lines tools print after every failure, which
// would otherwise be the "last error line" of every Maven or npm failure.
func isBoilerplate(t string) bool {
	if s, ok := strings.CutPrefix(t, "[ERROR]"); ok {
		s = strings.TrimSpace(s)
		return s == "" || strings.HasPrefix(s, "-> [Help") || strings.HasPrefix(s, "[Help") ||
			strings.HasPrefix(s, "To see the full stack trace") || strings.HasPrefix(s, "Re-run Maven") ||
			strings.HasPrefix(s, "For more information about the errors") ||
			strings.HasPrefix(s, "After correcting the problems") || strings.HasPrefix(s, "Please refer to") ||
			strings.HasPrefix(s, "mvn ")
	}
	return false
}

func isNPM(t string) bool {
	return strings.HasPrefix(t, "npm ERR!") || strings.HasPrefix(t, "npm error")
}

// npmBody is an npm error line without its prefix.
func npmBody(t string) string {
	if s, ok := strings.CutPrefix(t, "npm ERR!"); ok {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(strings.TrimPrefix(t, "npm error"))
}

// npmBlock judges a contiguous block of npm error lines ending at lines[i].
// Its message is the first line that is not metadata ("code E404",
// "errno", "path", the debug-log pointer): npm prints the cause first and
// boilerplate after. A lifecycle failure (a script exited non-zero) only
// reports that the script failed, so it is weak and the scan goes on above
// the block for the script's own error.
func npmBlock(lines []string, i int) (kind, string, int) {
	start := i
	for start > 0 && isNPM(strings.TrimSpace(lines[start-1])) {
		start--
	}
	var msg string
	lifecycle := false
	for j := start; j <= i; j++ {
		b := npmBody(strings.TrimSpace(lines[j]))
		key, _, _ := strings.Cut(b, " ")
		switch key {
		case "code":
			if strings.Contains(b, "ELIFECYCLE") {
				lifecycle = true
			}
			continue
		case "errno", "syscall", "path", "dest", "signal", "cwd", "command", "Exit", "Failed", "":
			if key == "command" || key == "Failed" || key == "Exit" {
				lifecycle = lifecycle || strings.HasPrefix(b, "command failed") ||
					strings.HasPrefix(b, "Failed at the") || strings.HasPrefix(b, "Exit status")
			}
			continue
		case "A", "This", "Log", "Verbose":
			if strings.HasPrefix(b, "A complete log") || strings.HasPrefix(b, "This is probably not") ||
				strings.HasPrefix(b, "Log files") || strings.HasPrefix(b, "Verbose") {
				continue
			}
		}
		if strings.HasSuffix(b, ".log") {
			continue
		}
		if msg == "" {
			msg = strings.TrimSpace(lines[j])
		}
	}
	next := start
	switch {
	case msg == "":
		return kindWeak, strings.TrimSpace(lines[i]), next
	case lifecycle:
		return kindWeak, msg, next
	}
	return kindStrong, msg, next
}

// gradleSection reads Gradle's "* What went wrong:" section that starts at
// lines[i]: the deepest "> cause" line names the failure ("Could not find
// com.foo:bar:1.2.3."). When that only points at other output ("see the
// compiler error output", "There were failing tests") it is weak and the
// scan continues above for the compiler's or the test's own line.
func gradleSection(lines []string, i int) (kind, string, int) {
	var first, deepest string
	for j := i + 1; j < len(lines); j++ {
		t := strings.TrimSpace(lines[j])
		if t == "" || strings.HasPrefix(t, "* ") {
			break
		}
		if first == "" {
			first = t
		}
		if s, ok := strings.CutPrefix(t, "> "); ok {
			deepest = s
		}
	}
	msg := deepest
	if msg == "" {
		msg = first
	}
	if msg == "" {
		return kindNone, "", i
	}
	if strings.Contains(msg, "see the compiler error output") || strings.Contains(msg, "There were failing tests") ||
		strings.Contains(msg, "finished with non-zero exit value") {
		return kindWeak, msg, i
	}
	return kindStrong, msg, i
}

// isExitLine reports lines that say a step failed without saying why.
func isExitLine(t string) bool {
	switch t {
	case "FAIL", "FAILED", "FAILURE", "ERROR", "BUILD FAILED", "BUILD FAILURE", "FAILURE: Build failed with an exception.":
		return true
	}
	return strings.Contains(t, "exit code") || strings.Contains(t, "exit status") ||
		strings.Contains(t, "Exit code") || strings.Contains(t, "Exit status") ||
		strings.Contains(t, "exited with code") || strings.HasPrefix(t, "BUILD FAILED in ") ||
		strings.HasPrefix(t, "FAIL\t") || // go test's per-package summary: the cause is above
		strings.HasPrefix(t, "> Task ") && strings.HasSuffix(t, " FAILED") || // Gradle's task line
		isPytestProgress(t) ||
		strings.Contains(t, "due to") && strings.Contains(t, "previous error") || // cargo's summary
		(strings.HasPrefix(t, "make") && strings.Contains(t, "*** [") && strings.Contains(t, "Error "))
}

// isPytestProgress reports pytest's per-test lines ("t.py::test FAILED
// [ 50%]", xdist's "[gw1] [ 50%] FAILED t.py::test"): which test, not why.
func isPytestProgress(t string) bool {
	return strings.Contains(t, ".py::") && !strings.Contains(t, " - ") &&
		(hasWord(t, "FAILED") || hasWord(t, "ERROR")) && !strings.HasPrefix(t, "FAILED ") && !strings.HasPrefix(t, "ERROR ") ||
		strings.Contains(t, ".py::") && strings.HasSuffix(t, "%]")
}

// pytestE returns the exception of a pytest "E   XxxError: ..." line.
func pytestE(t string) (string, bool) {
	if len(t) < 3 || t[0] != 'E' || (t[1] != ' ' && t[1] != '\t') {
		return "", false
	}
	s := strings.TrimSpace(t[1:])
	if isExceptionLine(s) {
		return s, true
	}
	return "", false
}

// pytestSummary splits pytest's short summary line "FAILED tests/x.py::t -
// reason" (or ERROR) into the test id and the reason; the reason is the
// failure, the test id is the pipeline's own.
func pytestSummary(t string) (id, reason string, ok bool) {
	rest, found := strings.CutPrefix(t, "FAILED ")
	if !found {
		rest, found = strings.CutPrefix(t, "ERROR ")
	}
	if !found || rest == "" {
		return "", "", false
	}
	test, _, _ := strings.Cut(rest, " ")
	if !strings.Contains(test, "::") && !strings.HasSuffix(test, ".py") {
		return "", "", false
	}
	if _, r, ok := strings.Cut(rest, " - "); ok {
		return t, strings.TrimSpace(r), true
	}
	return t, "", true
}

// isExceptionLine reports "pkg.SomeError: message" (Python, Java) and a
// bare "KeyboardInterrupt".
func isExceptionLine(t string) bool {
	n := 0
	for n < len(t) && (isIdent(t[n]) || t[n] == '.') {
		n++
	}
	if n == 0 || isDigit(t[0]) || (n < len(t) && t[n] != ':') {
		return false
	}
	name := t[:n]
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	for _, suffix := range [...]string{"Error", "Exception", "Exit", "Interrupt", "NotFound"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// errorMarkers are the substrings that make a line an error line.
var errorMarkers = [...]string{
	"Error:", "error:", "fatal:", "Fatal error", "fatal error", "FATAL", "error[E", "panic:",
	"Error response from daemon", "curl: (", "command not found", ": not found",
	"error while loading shared libraries", "cannot open shared object file",
	"Segmentation fault", "Killed", "Out of memory", "out of memory", "OOMKilled",
	"No space left on device",
}

// hasErrorMarker reports error markers, and ERROR and FAIL(ED|URE) as
// words (not "ERRORS", a pytest section header).
func hasErrorMarker(t string) bool {
	for _, m := range errorMarkers {
		if strings.Contains(t, m) {
			return true
		}
	}
	return hasWord(t, "ERROR") || hasWord(t, "FAIL") || hasWord(t, "FAILED") || hasWord(t, "FAILURE")
}

func hasWord(t, w string) bool {
	for off := 0; ; {
		i := strings.Index(t[off:], w)
		if i < 0 {
			return false
		}
		i += off
		end := i + len(w)
		if (i == 0 || !isLetter(t[i-1])) && (end == len(t) || !isLetter(t[end])) {
			return true
		}
		off = end
	}
}

// bound cuts s to MaxMessage bytes at a rune boundary.
func bound(s string) string {
	if len(s) <= MaxMessage {
		return s
	}
	n := MaxMessage
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isIdent(c byte) bool  { return isLetter(c) || isDigit(c) || c == '_' }
