package signature

import (
	"bytes"
	"math/bits"
	"slices"
	"strings"
)

// The tokens the masker writes in place of variable parts. Masking is
// idempotent: a placeholder in the input is copied as it is, so a stored
// template can be fed back through the miner (Seed).
const (
	Num      = "<NUM>"    // numbers, versions, durations' digits: 42, 3.7.17, 0.25 in 0.25s
	Hex      = "<HEX>"    // hashes, addresses, digests: 3f2a9c1, 0x7ffd5fbff8c0, the 64 hex of sha256:…
	UUID     = "<UUID>"   // 8-4-4-4-12 hex
	TS       = "<TS>"     // 2026-12-01T10:00:00Z, 2026-12-01 10:00:00, 10:00:00.123
	IP       = "<IP>"     // dotted IPv4
	Path     = "<PATH>"   // /abs, ./rel, ~/x, C:\x, a/b/c, a/b.py: file paths differ per runner and repo
	URLPath  = "<URL>"    // a URL's path and query; scheme and host are kept: https://registry.npmjs.org/<URL>
	Quoted   = "<QUOTED>" // a quoted value, unless a keep rule says it is the information
	Wildcard = "<*>"      // a template position where the miner saw different tokens
)

var placeholders = [...]string{Num, Hex, UUID, TS, IP, Path, URLPath, Quoted, Wildcard}

// pinMark prefixes a token, inside the miner only, that a keep rule
// protected: the miner never generalises it into <*>, and a message matches
// a template only when their protected tokens are equal. Masking turns
// control bytes in the input into spaces, so no input can forge it.
const pinMark = '\x00'

// maxTokens bounds a message's token count; further tokens are dropped (a
// long line's head names the error, and the miner's cost grows with it).
const maxTokens = 64

// keepRules find the identifiers that are the information, in order. A
// masker that turned every quoted value into <QUOTED> would make `No module
// named '_sqlite3'` (the 2019 regression: a CPython built without SQLite)
// and `No module named 'requests'` (a customer's missing dependency) one
// signature, and the regression would drown in the background; so would a
// missing shared library in a thousand unrelated "cannot open shared object
// file" errors. Each rule names the word it keeps relative to a fixed
// phrase; the whole whitespace-delimited word is kept verbatim, quotes and
// digits included, and pinned (see pinMark). Only phrases whose neighbour is
// an identifier (a module, package, library, header or command name) belong
// here: a value (a user id, a file in the customer's repo) must stay masked,
// or each pipeline gets its own signature.
var keepRules = [...]keepRule{
	// Python: ModuleNotFoundError / ImportError (2.7 writes the name unquoted).
	{phrase: "No module named ", side: after},
	// Python: `cannot import name 'soft_unicode' from 'markupsafe'`: a package
	// upgrade that removed a name; both the name and the package matter.
	{phrase: "cannot import name ", side: after},
	{phrase: "' from ", side: after, only: "cannot import name "},
	// Python: `module 'collections' has no attribute 'Callable'`: a runtime
	// upgrade that removed an API.
	{phrase: "module ", side: after, only: "AttributeError: module "},
	{phrase: " has no attribute ", side: after, only: "AttributeError: module "},
	// Ruby LoadError: `cannot load such file -- nokogiri/nokogiri`.
	{phrase: "cannot load such file -- ", side: after},
	// Node: `Cannot find module 'express'` (a package name; a path is the
	// customer's file and stays masked), ESM's `Cannot find package 'x'`.
	{phrase: "Cannot find module ", side: after, notPath: true},
	{phrase: "Cannot find package ", side: after, notPath: true},
	// PHP: `Unable to load dynamic library 'pdo_sqlite'`.
	{phrase: "Unable to load dynamic library ", side: after},
	// The dynamic loader: `error while loading shared libraries: libpython3.7m.so.1.0:`
	// and `libsqlite3.so.0: cannot open shared object file`.
	{phrase: "error while loading shared libraries: ", side: after},
	{phrase: ": cannot open shared object file", side: before},
	// The linker: `cannot find -lsqlite3`.
	{phrase: "cannot find -l", side: within},
	// C compilers: `fatal error: Python.h: No such file or directory`.
	{phrase: "fatal error: ", side: after, header: true},
	// Go: `package log/slog is not in std`, `... is not in GOROOT`,
	// GOPATH-era `cannot find package "x"`.
	{phrase: " is not in std", side: before},
	{phrase: " is not in GOROOT", side: before},
	{phrase: "cannot find package ", side: after},
	// Shells: bash `poetry: command not found`, zsh `command not found: poetry`,
	// dash `yarn: not found`.
	{phrase: ": command not found", side: before},
	{phrase: "command not found: ", side: after},
	{phrase: ": not found", side: before},
}

type side int

const (
	after  side = iota // the word that starts right after the phrase
	before             // the word that ends where the phrase starts
	within             // the word the phrase starts in
)

type keepRule struct {
	phrase  string
	side    side
	only    string // the rule applies only when the message contains this
	notPath bool   // do not keep a word that is a file path ('/x', './x')
	header  bool   // keep only a C header name (contains ".h")
}

// pins collects the start offsets of kept words; a message has few.
type pins struct {
	n   int
	off [8]int
}

func (p *pins) add(off int) {
	for i := 0; i < p.n; i++ {
		if p.off[i] == off {
			return
		}
	}
	if p.n < len(p.off) {
		p.off[p.n] = off
		p.n++
	}
}

// drop removes the pin at off.
func (p *pins) drop(off int) {
	for i := 0; i < p.n; i++ {
		if p.off[i] == off {
			p.n--
			p.off[i] = p.off[p.n]
			return
		}
	}
}

func (p *pins) has(off int) bool {
	for i := 0; i < p.n; i++ {
		if p.off[i] == off {
			return true
		}
	}
	return false
}

// ruleByFirst maps a byte to the keep rules whose phrase starts with it
// (a bit per rule), so findPins reads the message once instead of
// searching it for every phrase.
var ruleByFirst = func() (t [256]uint32) {
	if len(keepRules) > 32 {
		panic("signature: more than 32 keep rules")
	}
	for i, r := range &keepRules {
		t[r.phrase[0]] |= 1 << i
	}
	return t
}()

func findPins(s string) pins {
	var p pins
	for i := 0; i < len(s); i++ {
		set := ruleByFirst[s[i]]
		for set != 0 {
			k := bits.TrailingZeros32(set)
			set &^= 1 << k
			r := &keepRules[k]
			if i+1 >= len(s) || s[i+1] != r.phrase[1] || !strings.HasPrefix(s[i:], r.phrase) || r.only != "" && !strings.Contains(s, r.only) {
				continue
			}
			if w, ok := r.word(s, i); ok {
				p.add(w)
			}
		}
	}
	return p
}

// word returns the start of the word rule r keeps for its phrase found at
// s[i:].
func (r *keepRule) word(s string, i int) (int, bool) {
	var w int
	switch r.side {
	case after:
		w = i + len(r.phrase)
		// The phrase ends in a space; more of them (`No module named
		// '_sqlite3'` with two) still name the word after it, as the
		// tokens of the masked message, joined by one space, do again.
		for w < len(s) && isSpace(s[w]) && isSpace(r.phrase[len(r.phrase)-1]) {
			w++
		}
		if w >= len(s) || isSpace(s[w]) {
			return 0, false
		}
		if r.notPath && (strings.HasPrefix(s[w:], "'/") || strings.HasPrefix(s[w:], "'.") ||
			strings.HasPrefix(s[w:], "\"/") || strings.HasPrefix(s[w:], "\".") || s[w] == '/' || s[w] == '.') {
			return 0, false
		}
		if r.header {
			end := w
			for end < len(s) && !isSpace(s[end]) {
				end++
			}
			if !strings.Contains(s[w:end], ".h") {
				return 0, false
			}
		}
	case before, within:
		if r.side == before && (i == 0 || isSpace(s[i-1])) {
			return 0, false
		}
		w = i
		for w > 0 && !isSpace(s[w-1]) {
			w--
		}
	}
	if s[w] == '<' && isPlaceholderAt(s[w:]) {
		return 0, false // already masked: pinning it would make Mask(Mask(x)) differ
	}
	return w, true
}

func isPlaceholderAt(s string) bool {
	for _, ph := range &placeholders {
		if strings.HasPrefix(s, ph) {
			return true
		}
	}
	return false
}

// Mask returns msg with its variable parts replaced by placeholders and
// whitespace collapsed: the form the miner clusters.
func Mask(msg string) string {
	var m masker
	m.mask(msg)
	return string(m.plain(nil, false))
}

// masker is the hand-written scanner: one pass over the message, no
// regular expressions, output into a reused buffer.
type masker struct {
	out     []byte
	toks    [][]byte
	emitted []int  // the input offsets of the pinned words in out, in order
	text    []byte // out as Mask returns it, when the pins are checked
	at      []int  // the offsets in text of out's pinned tokens
}

// plain appends the masked message as Mask returns it (tokens as tokens
// bounds them, single spaces, no pin marks) to dst and, if record, the offset
// in it of each pinned token to m.at.
func (m *masker) plain(dst []byte, record bool) []byte {
	for i, t := range m.tokens() {
		if i > 0 {
			dst = append(dst, ' ')
		}
		if t[0] == pinMark {
			t = t[1:]
			if record {
				m.at = append(m.at, len(dst))
			}
		}
		dst = append(dst, t...)
	}
	return dst
}

// tokens splits the masked output at spaces (the masker writes single
// spaces only) into at most maxTokens tokens, reusing m.toks. Placeholders
// are longer than most of what they replace (0 -> <NUM>), so the tokens
// that would make Mask's result longer than MaxMessage are dropped too:
// masking the result again would otherwise cut it (see bound), maybe inside
// a token. Whole tokens are dropped, as at maxTokens, since a cut token can
// mask differently (a cut word can be a hash).
func (m *masker) tokens() [][]byte {
	m.toks = m.toks[:0]
	n := -1 // Mask's length: tokens without their pin mark, one space between
	for b := m.out; len(b) > 0 && len(m.toks) < maxTokens; {
		i := 0
		for i < len(b) && b[i] != ' ' {
			i++
		}
		if i > 0 {
			n += 1 + i
			if b[0] == pinMark {
				n--
			}
			if n > MaxMessage {
				break
			}
			m.toks = append(m.toks, b[:i])
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return m.toks
}

func (m *masker) mask(s string) {
	if len(s) > MaxMessage {
		s = bound(s)
	}
	p := findPins(s)
	for {
		m.maskWith(s, &p)
		if len(m.emitted) == 0 || !m.unpinUnstable(&p) {
			return
		}
	}
}

// unpinUnstable drops from p the pins whose word the keep rules would not
// pin again in the masked output, and reports whether it dropped any. A
// rule reads its phrase's context in the input, and masking can take that
// context away: in
//
//	cannot import name  '' from 00
//
// "' from " pins 00 (the name after two spaces is not pinned), but the
// output `cannot import name <QUOTED> from 00` has no "' from " left, so
// masking it again would turn 00 into <NUM>. Whitespace collapsed,
// a quoted value or path masked, tokens dropped (see tokens), a phrase inside
// a masked value: a pin is kept only if the output still carries its
// reason, which makes Mask(Mask(x)) == Mask(x) hold by construction. The
// check runs only for messages with pins, and each round drops a pin.
func (m *masker) unpinUnstable(p *pins) bool {
	m.at = m.at[:0]
	m.text = m.plain(m.text[:0], true)
	again := findPins(string(m.text))
	dropped := false
	for k, off := range m.at {
		if !again.has(off) {
			p.drop(m.emitted[k])
			dropped = true
		}
	}
	return dropped
}

// maskWith masks s into m.out, copying the words that start at p's offsets
// verbatim behind a pinMark.
func (m *masker) maskWith(s string, p *pins) {
	m.out = m.out[:0]
	m.emitted = m.emitted[:0]
	wordStart := true
	for i := 0; i < len(s); {
		c := s[i]
		if isSpace(c) {
			if len(m.out) > 0 && m.out[len(m.out)-1] != ' ' {
				m.out = append(m.out, ' ')
			}
			wordStart = true
			i++
			continue
		}
		if wordStart {
			wordStart = false
			end := i
			for end < len(s) && !isSpace(s[end]) {
				end++
			}
			if p.has(i) {
				m.emitted = append(m.emitted, i)
				m.out = append(m.out, pinMark)
				m.out = append(m.out, s[i:end]...)
				i = end
				continue
			}
			if n := m.wordRule(s[i:end]); n > 0 {
				i += n
				continue
			}
		}
		i += m.step(s, i)
	}
	if n := len(m.out); n > 0 && m.out[n-1] == ' ' {
		m.out = m.out[:n-1]
	}
	m.canonicalImport()
}

// wordRule masks a whole word that is a URL or a file path, with its
// surrounding brackets and punctuation kept, and returns the bytes it
// consumed (0: not such a word).
func (m *masker) wordRule(w string) int {
	lead := 0
	for lead < len(w) && (w[lead] == '(' || w[lead] == '[' || w[lead] == '{') {
		lead++
	}
	end := len(w)
	for end > lead && isTrailingPunct(w[end-1]) {
		end--
	}
	core := w[lead:end]
	if core == "" || core[0] == '<' || core[0] == '\'' || core[0] == '"' || core[0] == '`' {
		return 0
	}
	if strings.Contains(core, Quoted) {
		// Masked output, where a quoted value with spaces has joined the
		// words around it: the input's words were judged apart (a=`x y`/b/c
		// has no path), so judging the joined word a=<QUOTED>/b/c as a path
		// would mask the output again.
		return 0
	}
	if schemeLen(core) > 0 {
		m.out = append(m.out, w[:lead]...)
		m.url(core)
		m.out = append(m.out, w[end:]...)
		return len(w)
	}
	if isPath(core) {
		m.out = append(m.out, w[:lead]...)
		m.out = append(m.out, Path...)
		m.out = append(m.out, w[end:]...)
		return len(w)
	}
	return 0
}

// schemeLen returns the length of "scheme://" at the start of s, or 0.
func schemeLen(s string) int {
	i := 0
	for i < len(s) && i < 16 && (isLetter(s[i]) || (i > 0 && (isDigit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))) {
		i++
	}
	if i > 0 && strings.HasPrefix(s[i:], "://") {
		return i + 3
	}
	return 0
}

// url writes scheme://host, the port masked, and /<URL> when there is a
// path or query: the host says which service failed, the path is the
// request (a package, a commit, a token).
func (m *masker) url(u string) {
	n := schemeLen(u)
	m.out = append(m.out, u[:n]...)
	rest := u[n:]
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	host := rest[:hostEnd]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:] // credentials
	}
	if c := strings.LastIndexByte(host, ':'); c >= 0 && !strings.Contains(host[c:], "]") {
		m.out = append(m.out, host[:c+1]...)
		m.out = append(m.out, Num...)
	} else {
		m.out = append(m.out, host...)
	}
	if p := rest[hostEnd:]; p != "" && p != "/" {
		m.out = append(m.out, '/')
		m.out = append(m.out, URLPath...)
	}
}

// isPath reports a file path: absolute, explicitly relative, Windows, or
// relative with two separators or a file name ("src/app.ts:12:5"). A single
// separator between words ("net/http", "i/o", "@babel/core") is a name.
func isPath(s string) bool {
	if len(s) < 2 {
		return false
	}
	switch {
	case s[0] == '/' || s[0] == '\\' || s[0] == '~' && s[1] == '/':
		return true
	case strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../"):
		return true
	case len(s) > 2 && isLetter(s[0]) && s[1] == ':' && (s[2] == '\\' || s[2] == '/'):
		return true
	case strings.IndexByte(s, '\\') >= 0:
		return true
	}
	n := strings.Count(s, "/")
	if n >= 2 {
		return true
	}
	if n == 1 {
		last := s[strings.IndexByte(s, '/')+1:]
		return strings.IndexByte(last, '.') > 0 || strings.IndexByte(last, ':') > 0
	}
	return false
}

// step masks what starts at s[i] inside a word and returns the bytes
// consumed.
func (m *masker) step(s string, i int) int {
	c := s[i]
	switch {
	case c == '<':
		for _, ph := range &placeholders {
			if strings.HasPrefix(s[i:], ph) {
				m.out = append(m.out, ph...)
				return len(ph)
			}
		}
	case c == '\'' || c == '"' || c == '`':
		if n := m.quoted(s, i); n > 0 {
			return n
		}
	case isDigit(c):
		return m.numeric(s, i)
	case isLetter(c) || c == '_':
		return m.identifier(s, i)
	}
	m.out = append(m.out, c)
	return 1
}

// quoted masks a quoted value opened at s[i] and returns the bytes
// consumed, or 0 when s[i] opens nothing (an apostrophe in "can't"). The
// value may contain spaces; a quoted URL is masked as a URL.
func (m *masker) quoted(s string, i int) int {
	q := s[i]
	if i > 0 && !isSpace(s[i-1]) && !isQuoteLead(s[i-1]) {
		return 0
	}
	const maxQuoted = 256
	for j := i + 1; j < len(s) && j-i <= maxQuoted; j++ {
		if s[j] != q {
			continue
		}
		if q == '\'' && j+1 < len(s) && (isIdent(s[j+1]) || s[j+1] == '<') {
			continue // an apostrophe inside the value (< may be a masked digit)
		}
		v := s[i+1 : j]
		if schemeLen(v) > 0 && !hasSpace(v) {
			m.out = append(m.out, q)
			m.url(v)
			m.out = append(m.out, q)
		} else {
			m.out = append(m.out, Quoted...)
		}
		return j + 1 - i
	}
	return 0
}

// numeric masks a run that starts with a digit: a timestamp, a UUID, an
// IPv4 address, 0x… or a hex hash, else every digit run in it (the letters
// stay: 12s → <NUM>s, 4096MiB → <NUM>MiB, 1m30s → <NUM>m<NUM>s).
func (m *masker) numeric(s string, i int) int {
	if n := timestampLen(s[i:]); n > 0 {
		m.out = append(m.out, TS...)
		return n
	}
	if isUUID(s[i:]) {
		m.out = append(m.out, UUID...)
		return 36
	}
	if n := ipLen(s[i:]); n > 0 {
		m.out = append(m.out, IP...)
		return n
	}
	end := i
	for end < len(s) && isIdent(s[end]) {
		end++
	}
	run := s[i:end]
	if len(run) > 2 && run[0] == '0' && (run[1] == 'x' || run[1] == 'X') && allHex(run[2:]) {
		m.out = append(m.out, Hex...)
		return len(run)
	}
	if isHash(run) {
		m.out = append(m.out, Hex...)
		return len(run)
	}
	j := i
	for j < len(s) {
		switch {
		case isDigit(s[j]):
			j = numberEnd(s, j)
			m.out = append(m.out, Num...)
		case isIdent(s[j]):
			m.out = append(m.out, s[j])
			j++
		default:
			return j - i
		}
	}
	return j - i
}

// numberEnd returns the end of the number at s[i]: digits, and dots or a
// decimal comma followed by digits (3.7.17, 0.25).
func numberEnd(s string, i int) int {
	for i < len(s) {
		if isDigit(s[i]) {
			i++
		} else if s[i] == '.' && i+1 < len(s) && isDigit(s[i+1]) {
			i++
		} else {
			break
		}
	}
	return i
}

// identifier copies a run that starts with a letter, masking a UUID or a
// hash that happens to start with a letter and a version "v1.2.3".
func (m *masker) identifier(s string, i int) int {
	if isUUID(s[i:]) {
		m.out = append(m.out, UUID...)
		return 36
	}
	end := i
	for end < len(s) && isIdent(s[end]) {
		end++
	}
	run := s[i:end]
	if isHash(run) {
		m.out = append(m.out, Hex...)
		return len(run)
	}
	if (run[0] == 'v' || run[0] == 'V') && len(run) > 1 && allDigits(run[1:]) {
		m.out = append(m.out, run[0])
		m.out = append(m.out, Num...)
		return numberEnd(s, i+1) - i
	}
	m.out = append(m.out, run...)
	return len(run)
}

// isHash reports a run of at least 7 hex digits with both a digit and a
// letter (a git abbreviation is 7): "deadbeef" and "1234567" are not.
func isHash(run string) bool {
	if len(run) < 7 {
		return false
	}
	digit, letter := false, false
	for i := 0; i < len(run); i++ {
		c := run[i]
		switch {
		case isDigit(c):
			digit = true
		case 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F':
			letter = true
		default:
			return false
		}
	}
	return digit && letter
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && !('a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func isUUID(s string) bool {
	if len(s) < 36 || (len(s) > 36 && isIdent(s[36])) {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !allHex(s[i : i+1]) {
				return false
			}
		}
	}
	return true
}

// ipLen returns the length of the dotted IPv4 address at the start of s.
func ipLen(s string) int {
	i := 0
	for part := 0; part < 4; part++ {
		if part > 0 {
			if i >= len(s) || s[i] != '.' {
				return 0
			}
			i++
		}
		n := 0
		for i < len(s) && isDigit(s[i]) && n < 4 {
			i++
			n++
		}
		if n == 0 || n > 3 {
			return 0
		}
	}
	if i < len(s) && (isIdent(s[i]) || s[i] == '.' && i+1 < len(s) && isDigit(s[i+1])) {
		return 0
	}
	return i
}

// timestampLen returns the length of a date (with an optional time and
// zone) or a clock time at the start of s.
func timestampLen(s string) int {
	if n := digitsThen(s, 4, '-'); n > 0 && digitsThen(s[n:], 2, '-') > 0 && len(s) >= 10 && isDigit(s[8]) && isDigit(s[9]) {
		i := 10
		if i+1 < len(s) && (s[i] == 'T' || s[i] == ' ' || s[i] == '_') && isDigit(s[i+1]) {
			if t := clockLen(s[i+1:]); t > 0 {
				i += 1 + t
			}
		}
		if i < len(s) && s[i] == 'Z' {
			i++
		} else if i+2 < len(s) && (s[i] == '+' || s[i] == '-') && isDigit(s[i+1]) && isDigit(s[i+2]) {
			j := i + 3
			if j < len(s) && s[j] == ':' {
				j++
			}
			if j+1 < len(s) && isDigit(s[j]) && isDigit(s[j+1]) {
				i = j + 2
			}
		}
		if i < len(s) && isIdent(s[i]) {
			return 0
		}
		return i
	}
	if n := clockLen(s); n > 0 && (n == len(s) || !isIdent(s[n])) {
		return n
	}
	return 0
}

// clockLen returns the length of hh:mm:ss(.fff) or hh:mm at the start of s.
func clockLen(s string) int {
	h := 0
	for h < len(s) && h < 2 && isDigit(s[h]) {
		h++
	}
	if h == 0 || h >= len(s) || s[h] != ':' || len(s) < h+3 || !isDigit(s[h+1]) || !isDigit(s[h+2]) {
		return 0
	}
	i := h + 3
	if i+2 < len(s) && s[i] == ':' && isDigit(s[i+1]) && isDigit(s[i+2]) {
		i += 3
		if i+1 < len(s) && (s[i] == '.' || s[i] == ',') && isDigit(s[i+1]) {
			i++
			for i < len(s) && isDigit(s[i]) {
				i++
			}
		}
	} else {
		return 0 // "12:34" is more often file.go:line:col than a time
	}
	return i
}

// digitsThen returns n+1 when s starts with n digits and then sep.
func digitsThen(s string, n int, sep byte) int {
	if len(s) <= n || s[n] != sep {
		return 0
	}
	for i := 0; i < n; i++ {
		if !isDigit(s[i]) {
			return 0
		}
	}
	return n + 1
}

// isSpace reports the bytes that separate tokens: whitespace and every
// other control byte (so none can reach a token, pinMark included).
func isSpace(c byte) bool { return c <= ' ' || c == 0x7f }

func isTrailingPunct(c byte) bool {
	switch c {
	case ')', ']', '}', ',', ';', ':', '.', '!', '?':
		return true
	}
	return false
}

// isQuoteLead reports the bytes after which a quote opens a value
// (name='x', f("x"), [x, 'y']).
func isQuoteLead(c byte) bool {
	switch c {
	case '=', '(', '[', '{', ':', ',':
		return true
	}
	return false
}

func hasSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			return true
		}
	}
	return false
}

// py3ImportError is the masked Python 3 text of a failed import raised,
// or re-raised by a tool, as the base class (the module name is a pinned
// word, see pinMark); canonicalImport rewrites its class to the one
// CPython 3.6+ raises itself.
const (
	py3ImportError = "ImportError: No module named \x00'"
	py2ImportError = "ImportError: No module named \x00"
	py3ModuleClass = "ModuleNotFoundError"
)

// canonicalImport makes one message of Python 3's two texts of the same
// failed import: `ModuleNotFoundError: No module named '_sqlite3'` (what
// CPython 3.6+ raises) and `ImportError: No module named '_sqlite3'` (the
// same exception caught as its base class and re-raised, or 3.3–3.5,
// which raised ImportError with the same quoted text). Split, one broken
// module's evidence falls into two signatures by which tool ran the
// import (the simulator's text-drift). The module name stays the
// information: `'_sqlite3'` and `'requests'` remain different signatures.
// Python 2's unquoted `ImportError: No module named _sqlite3` is the same
// failure too, and joins them quoted: a broken build of one module across
// 2.7 and 3.x (2019's `_sqlite3`) is one signature, not a seventh of its
// evidence apart. Python 2 names only the last dotted part (`import
// yaml.constructor` says `constructor`), so its word may meet a Python 3
// top-level module of that name; both are rare, and a pipeline's own
// missing dependency stays its own. A word that is not a module name
// (letters, digits, `_` and `.`) is left as it is. A class that merely ends in ImportError
// (`MyImportError: ...`) is not Python's and is left alone. It runs on the
// masked output, whose spaces are single, so that masking stays
// idempotent.
func (m *masker) canonicalImport() {
	for from := 0; ; {
		i := bytes.Index(m.out[from:], []byte(py2ImportError))
		if i < 0 {
			return
		}
		i += from
		from = i + len(py2ImportError)
		if i > 0 && m.out[i-1] != ' ' {
			continue
		}
		if !bytes.HasPrefix(m.out[i:], []byte(py3ImportError)) {
			end := from
			for end < len(m.out) && m.out[end] != ' ' {
				end++
			}
			if end == from || !isModuleName(m.out[from:end]) {
				continue
			}
			m.out = slices.Insert(m.out, end, '\'')
			m.out = slices.Insert(m.out, from, '\'')
			from += 2
		}
		const class = len("ImportError")
		m.out = slices.Replace(m.out, i, i+class, []byte(py3ModuleClass)...)
		from += len(py3ModuleClass) - class
	}
}

// isModuleName reports whether w is a dotted Python module name as Python
// 2 writes it unquoted: ASCII letters, digits, '_' and '.'.
func isModuleName(w []byte) bool {
	for _, c := range w {
		if !(c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
