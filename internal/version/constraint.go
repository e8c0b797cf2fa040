package version

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Constraint is a version range such as ">=18 <23", "~3.11", "^1.2",
// "3.7.*", "==3.12.1" or "~=3.11", as check specs write them.
//
// Grammar: alternatives separated by "||"; each alternative is a list of
// clauses separated by spaces or commas, all of which must hold. A clause is
// an optional operator followed by a version:
//
//	>= <= > < != == =   ordered in the constraint's scheme (see Compare)
//	3.7.* 3.7.x ==3.7.* every version whose release starts with 3.7
//	3.7 (no operator)   the same as 3.7.*: "node 20" means any 20.x
//	~3.11               >=3.11 and 3.11.*  (~1 is 1.*)
//	^1.2  ^0.3  ^0.0.4  >=1.2 and 1.*;  >=0.3 and 0.3.*;  >=0.0.4 and 0.0.4.*
//	~=3.11  ~=1.4.5     PEP 440 compatible release: >=3.11 and 3.*; >=1.4.5 and 1.4.*
//
// Prefixes compare the dotted numbers at the start of a version after any
// "v"/"go" prefix and dpkg/rpm epoch, so "3.7.*" matches "3.7.16" and
// "3.7.0rc1" but not "3.70.1".
type Constraint struct {
	scheme Scheme
	text   string
	anyOf  [][]clause
}

type clause struct {
	op     string // one of >= <= > < != ==, or "" for a pure prefix match
	ver    string
	prefix []uint64 // when set, the version's release must start with it
}

// ErrConstraint is wrapped by every error ParseConstraint returns.
var ErrConstraint = errors.New("invalid version constraint")

// ParseConstraint parses s for versions of scheme. The error says what is
// wrong in the user's terms ("~" needs a version, unknown operator "=>").
func ParseConstraint(scheme Scheme, s string) (*Constraint, error) {
	c := &Constraint{scheme: scheme, text: strings.TrimSpace(s)}
	if c.text == "" {
		return nil, fmt.Errorf("%w: empty; write e.g. \">=18 <23\" or \"3.11.*\"", ErrConstraint)
	}
	for alt := range strings.SplitSeq(c.text, "||") {
		var clauses []clause
		for f := range strings.FieldsFuncSeq(alt, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
			cl, err := parseClause(f)
			if err != nil {
				return nil, fmt.Errorf("%w %q: %w", ErrConstraint, s, err)
			}
			clauses = append(clauses, cl...)
		}
		if len(clauses) == 0 {
			return nil, fmt.Errorf("%w %q: empty alternative around \"||\"", ErrConstraint, s)
		}
		c.anyOf = append(c.anyOf, clauses)
	}
	return c, nil
}

// operators, longest first so that ">=" is not read as ">".
var operators = []string{"~=", ">=", "<=", "==", "!=", ">", "<", "=", "~", "^"}

func parseClause(f string) ([]clause, error) {
	op := ""
	for _, o := range operators {
		if strings.HasPrefix(f, o) {
			op = o
			break
		}
	}
	v := f[len(op):]
	if v == "" {
		if op == "" {
			return nil, errors.New("empty clause")
		}
		return nil, fmt.Errorf("%q needs a version after it", op)
	}
	if strings.ContainsAny(v, "<>=!^") || v[0] == '~' {
		return nil, fmt.Errorf("%q: unknown operator or stray %q; use one of >= <= > < == != ~ ^ ~=", f, v)
	}
	if !strings.ContainsAny(v, "0123456789") {
		return nil, fmt.Errorf("%q has no version number", f)
	}
	wild := strings.HasSuffix(v, ".*") || strings.HasSuffix(v, ".x") || strings.HasSuffix(v, ".X")
	if wild {
		base := v[:len(v)-2]
		p, ok := numericPrefix(base)
		if !ok || len(p) != len(strings.Split(trimPrefixes(base), ".")) {
			return nil, fmt.Errorf("%q: a wildcard needs plain numbers before it, e.g. 3.7.*", f)
		}
		switch op {
		case "", "=", "==":
			return []clause{{prefix: p}}, nil
		case "!=":
			return []clause{{op: "!*", prefix: p}}, nil
		default:
			return nil, fmt.Errorf("%q: %q cannot take a wildcard", f, op)
		}
	}
	if strings.Contains(v, "*") {
		return nil, fmt.Errorf("%q: \"*\" is allowed only as the last component, e.g. 3.7.*", f)
	}
	p, _ := numericPrefix(v)
	switch op {
	case "":
		if len(p) == 0 {
			return []clause{{op: "==", ver: v}}, nil
		}
		// A bare "20" or "3.12" means that release line, as users of
		// tool version pins expect; a full version still matches itself.
		if exactNumeric(v) {
			return []clause{{prefix: p}}, nil
		}
		return []clause{{op: "==", ver: v}}, nil
	case "=", "==":
		return []clause{{op: "==", ver: v}}, nil
	case "~":
		if len(p) == 0 {
			return nil, fmt.Errorf("%q: \"~\" needs a numeric version", f)
		}
		return []clause{{op: ">=", ver: v}, {prefix: p[:min(len(p), 2)]}}, nil
	case "^":
		if len(p) == 0 {
			return nil, fmt.Errorf("%q: \"^\" needs a numeric version", f)
		}
		n := 1
		for n < len(p) && p[n-1] == 0 {
			n++
		}
		return []clause{{op: ">=", ver: v}, {prefix: p[:n]}}, nil
	case "~=":
		if len(p) < 2 {
			return nil, fmt.Errorf("%q: \"~=\" needs at least two components, e.g. ~=3.11", f)
		}
		return []clause{{op: ">=", ver: v}, {prefix: p[:len(p)-1]}}, nil
	default:
		return []clause{{op: op, ver: v}}, nil
	}
}

// Match reports whether v satisfies the constraint.
func (c *Constraint) Match(v string) bool {
	for _, all := range c.anyOf {
		ok := true
		for _, cl := range all {
			if !cl.match(c.scheme, v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// String returns the constraint as it was written.
func (c *Constraint) String() string { return c.text }

func (cl clause) match(scheme Scheme, v string) bool {
	switch cl.op {
	case "":
		return hasPrefix(v, cl.prefix)
	case "!*":
		return !hasPrefix(v, cl.prefix)
	}
	r := Compare(scheme, v, cl.ver)
	switch cl.op {
	case ">=":
		return r >= 0
	case "<=":
		return r <= 0
	case ">":
		return r > 0
	case "<":
		return r < 0
	case "!=":
		return r != 0
	default: // "=="
		return r == 0
	}
}

func hasPrefix(v string, p []uint64) bool {
	got, _ := numericPrefix(v)
	if len(got) < len(p) {
		return false
	}
	for i := range p {
		if got[i] != p[i] {
			return false
		}
	}
	return true
}

// trimPrefixes drops what comes before a version's release numbers: "v",
// Go's "go" and a dpkg/rpm epoch "1:".
func trimPrefixes(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ':'); i > 0 && exactNumeric(v[:i]) {
		v = v[i+1:]
	}
	if rest, ok := strings.CutPrefix(v, "go"); ok {
		return rest
	}
	return strings.TrimPrefix(strings.TrimPrefix(v, "v"), "V")
}

// numericPrefix returns the leading dotted numbers of v ("3.7.16rc1" →
// [3 7 16]); ok is false when there are none.
func numericPrefix(v string) (p []uint64, ok bool) {
	v = trimPrefixes(v)
	for v != "" {
		i := 0
		for i < len(v) && isDigit(v[i]) {
			i++
		}
		if i == 0 {
			break
		}
		n, err := strconv.ParseUint(v[:i], 10, 64)
		if err != nil {
			break
		}
		p = append(p, n)
		v = v[i:]
		if len(v) < 2 || v[0] != '.' || !isDigit(v[1]) {
			break
		}
		v = v[1:]
	}
	return p, len(p) > 0
}

// exactNumeric reports whether s is nothing but dotted numbers ("3.12").
func exactNumeric(s string) bool {
	if s == "" {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" {
			return false
		}
		for i := range len(part) {
			if !isDigit(part[i]) {
				return false
			}
		}
	}
	return true
}
