package rollout

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The input grammar of the control plane, written once: the server applies
// it to every path and query value, the Service to every field of a body,
// before anything reaches a store. Each refusal wraps ErrInvalid, names the
// field and, for a character, its code point (U+200B), so the caller knows
// what to change. A string that passes is valid UTF-8 without NUL, which
// both stores accept as text.
//
// Identifiers (labels, versions, organisation ids, rollout ids, token names
// and ids, ring names) follow an OCI tag's grammar plus ':' — 1 to MaxName
// bytes of A-Z a-z 0-9 '_' '.' '-' ':', the first a letter, digit or '_' —
// so "." and "..", homoglyphs such as U+2010 and anything a URL path or a
// shell would treat specially are refused, and the CLI can address every
// identifier the server accepts.
//
// Keys are the ids CI systems make up (job ids, workflow run ids, pipeline
// ids such as org/repo/.github/workflows/ci.yml@refs/heads/main): 1 to the
// field's limit of visible ASCII (! to ~).
//
// Texts (reasons, error texts, report texts) are valid UTF-8 without
// control characters other than newline and tab; lines (owners, query
// filters) have none at all.

// Per-field limits in bytes. They are part of the API (openapi.yaml says
// them too).
const (
	MaxName     = 128     // identifiers
	MaxKey      = 256     // job ids, run ids
	MaxPipeline = 512     // pipeline ids
	MaxReason   = 1 << 10 // reasons: revoke, pin, force, pause, halt, rollback
	MaxLine     = 256     // pin owners, query filters such as ?actor=
	// MaxErrorTextIn bounds a job event's error text as sent; the server
	// keeps its last MaxErrorText bytes.
	MaxErrorTextIn = 64 << 10
)

// CheckName refuses v as the identifier field unless it follows the
// identifier grammar.
func CheckName(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required: %w", field, ErrInvalid)
	}
	if len(v) > MaxName {
		return fmt.Errorf("%s %.20q… has %d bytes, at most %d are accepted: %w", field, v, len(v), MaxName, ErrInvalid)
	}
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		if !nameRune(r, i == 0) || (r == utf8.RuneError && size == 1) {
			return fmt.Errorf("%s %s: %s is not allowed%s: %w", field, quote(v), describe(v, i), nameHint, ErrInvalid)
		}
		i += size
	}
	return nil
}

const nameHint = "; an identifier is 1 to 128 of A-Z a-z 0-9 '_' '.' '-' ':' and starts with a letter, a digit or '_'"

func nameRune(r rune, first bool) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
		return true
	case r == '.', r == '-', r == ':':
		return !first
	}
	return false
}

// IsName reports whether v follows the identifier grammar.
func IsName(v string) bool { return CheckName("", v) == nil }

// CheckKey refuses v as the key field unless it is 1 to max bytes of
// visible ASCII.
func CheckKey(field, v string, max int) error {
	if v == "" {
		return fmt.Errorf("%s is required: %w", field, ErrInvalid)
	}
	if len(v) > max {
		return fmt.Errorf("%s %.20q… has %d bytes, at most %d are accepted: %w", field, v, len(v), max, ErrInvalid)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%s %s: %s is not allowed; an id is visible ASCII (! to ~) without spaces: %w", field, quote(v), describe(v, i), ErrInvalid)
		}
	}
	return nil
}

// CheckText refuses v as the free-text field when it is longer than max
// bytes, not UTF-8, or holds a control character other than newline and
// tab. An empty text passes: callers that need one say so.
func CheckText(field, v string, max int) error {
	return checkText(field, v, max, true)
}

// CheckLog refuses v as a log excerpt (a job's errorText) when it is
// longer than max bytes, not UTF-8, or holds NUL. Unlike CheckText it
// keeps carriage returns, escapes and other control characters: runner
// logs are full of progress bars and ANSI colours, the signature miner
// strips them, and refusing one would refuse the whole batch of events.
func CheckLog(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s has %d bytes, at most %d are accepted: %w", field, len(v), max, ErrInvalid)
	}
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		if (r == utf8.RuneError && size == 1) || r == 0 {
			return fmt.Errorf("%s %s: %s is not allowed; a log excerpt is UTF-8 without NUL: %w", field, quote(v), describe(v, i), ErrInvalid)
		}
		i += size
	}
	return nil
}

// CheckLine is CheckText without newline and tab.
func CheckLine(field, v string, max int) error {
	return checkText(field, v, max, false)
}

func checkText(field, v string, max int, multiline bool) error {
	if len(v) > max {
		return fmt.Errorf("%s has %d bytes, at most %d are accepted: %w", field, len(v), max, ErrInvalid)
	}
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		bad := (r == utf8.RuneError && size == 1) || (unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')))
		if bad {
			allowed := "no control characters"
			if multiline {
				allowed = "no control characters but newline and tab"
			}
			return fmt.Errorf("%s %s: %s is not allowed; text is UTF-8 with %s: %w", field, quote(v), describe(v, i), allowed, ErrInvalid)
		}
		i += size
	}
	return nil
}

// CheckRole refuses a token role other than admin, runner or org:<id>
// with an identifier as the id.
func CheckRole(role string) error {
	if role == RoleAdmin || role == RoleRunner {
		return nil
	}
	org, ok := strings.CutPrefix(role, RoleOrgPrefix)
	if !ok {
		return fmt.Errorf("role %s: want admin, runner or org:<id>: %w", quote(role), ErrInvalid)
	}
	if err := CheckName("organisation id of role "+quote(role), org); err != nil {
		return err
	}
	return nil
}

// describe names what is at byte i of v: its code point, or the byte
// that is not UTF-8.
func describe(v string, i int) string {
	r, size := utf8.DecodeRuneInString(v[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte 0x%02X at offset %d (not UTF-8)", v[i], i)
	}
	if unicode.IsPrint(r) && r < utf8.RuneSelf {
		return fmt.Sprintf("character %q (U+%04X) at offset %d", r, r, i)
	}
	return fmt.Sprintf("character U+%04X at offset %d", r, i)
}

// quote shows v in an error message: Go-quoted (so control characters and
// invalid bytes are visible), cut after 40 runes.
func quote(v string) string {
	if utf8.RuneCountInString(v) > 40 {
		return fmt.Sprintf("%+.40q…", v)
	}
	return fmt.Sprintf("%+q", v)
}

// checkNames checks name/value pairs of identifiers for the operation op.
func checkNames(op string, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := CheckName(pairs[i], pairs[i+1]); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}
