package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/version"
	"github.com/imagegate/imagegate/internal/yamlx"
	"go.yaml.in/yaml/v3"
)

// goss's matchers (docs/gossfile.md, "Matchers"), redone: a value in a
// gossfile is a matcher — a plain value compared for equality, a list of
// matchers the actual list must contain, or a one-key mapping naming an
// advanced matcher (have-prefix, contain-element, not, and, …). Each
// converts the actual value the way goss does before comparing: string
// matchers format it, numeric ones parse it, array ones split a string on
// newlines.

// gossMatcher is one compiled expectation.
type gossMatcher interface {
	// match reports whether actual satisfies the expectation, with an
	// optional detail for a failure (the patterns not found). An error is
	// a comparison that could not be made (a number expected, text found),
	// which fails the test, as in goss.
	match(actual any) (ok bool, detail string, err error)
	// String is the expectation in the gossfile's terms.
	String() string
}

// gossText is an attribute goss reads as a stream (file contents, command
// output): a list of expectations is matched line by line as patterns,
// anything else against the whole text.
type gossText string

// compileGossMatcher turns the YAML value n at path into a matcher; text
// attributes take a list as patterns.
func compileGossMatcher(d *yamlx.Decoder, n *yaml.Node, path string, text bool) (gossMatcher, error) {
	n = resolveAlias(n)
	if text && n.Kind == yaml.SequenceNode {
		return compilePatterns(d, n, path)
	}
	return compileMatcher(d, n, path, 0)
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

const maxMatcherDepth = 64

func compileMatcher(d *yamlx.Decoder, n *yaml.Node, path string, depth int) (gossMatcher, error) {
	n = resolveAlias(n)
	if depth > maxMatcherDepth {
		return nil, d.Errorf(n, path, "matchers nested more than %d deep", maxMatcherDepth)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := scalarValue(n)
		if err != nil {
			return nil, d.Errorf(n, path, "%v", err)
		}
		switch v := v.(type) {
		case nil:
			return nil, d.Errorf(n, path, "missing value: give the expected value or a matcher")
		case bool:
			return eqBool(v), nil
		case float64:
			return eqNumber{v, n.Value}, nil
		default:
			return eqString(v.(string)), nil
		}
	case yaml.SequenceNode:
		subs, err := compileList(d, n, path, depth)
		if err != nil {
			return nil, err
		}
		return &containElements{subs: subs}, nil
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			var keys []string
			for i := 0; i < len(n.Content); i += 2 {
				keys = append(keys, n.Content[i].Value)
			}
			return nil, d.Errorf(n, path, "one matcher per level, found %s: combine them with and: [...]", strings.Join(keys, ", "))
		}
		return compileNamed(d, n.Content[0], resolveAlias(n.Content[1]), yamlx.JoinPath(path, n.Content[0].Value), depth)
	}
	return nil, d.Errorf(n, path, "expected a value or a matcher, got %s", yamlx.Describe(n))
}

// gossMatcherNames are the advanced matchers goss documents; gjson and xml
// are refused at parse time (imagegate does not read JSON paths or XPath).
var gossMatcherNames = []string{"equal", "have-prefix", "have-suffix", "match-regexp", "contain-substring", "have-len",
	"have-patterns", "have-key", "contain-element", "contain-elements", "consist-of", "not", "and", "or",
	"gt", "ge", "lt", "le", "semver-constraint"}

func compileNamed(d *yamlx.Decoder, key, v *yaml.Node, path string, depth int) (gossMatcher, error) {
	name := key.Value
	str := func() (string, error) {
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return "", d.Errorf(v, path, "%s wants a string, got %s", name, yamlx.Describe(v))
		}
		return v.Value, nil
	}
	switch name {
	case "equal":
		var want any
		if err := v.Decode(&want); err != nil {
			return nil, d.Errorf(v, path, "%v", err)
		}
		return equalMatcher{normalize(want)}, nil
	case "have-prefix", "have-suffix", "contain-substring":
		s, err := str()
		if err != nil {
			return nil, err
		}
		return strOp{op: name, arg: s}, nil
	case "match-regexp":
		s, err := str()
		if err != nil {
			return nil, err
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, d.Errorf(v, path, "invalid regular expression: %v", err)
		}
		return strOp{op: name, arg: s, re: re}, nil
	case "have-len":
		var n int
		if v.Kind != yaml.ScalarNode || v.Decode(&n) != nil {
			return nil, d.Errorf(v, path, "have-len wants a number, got %s", yamlx.Describe(v))
		}
		return haveLen(n), nil
	case "have-patterns":
		if v.Kind != yaml.SequenceNode {
			return nil, d.Errorf(v, path, "have-patterns wants a list, got %s", yamlx.Describe(v))
		}
		return compilePatterns(d, v, path)
	case "have-key":
		sub, err := compileMatcher(d, v, path, depth+1)
		if err != nil {
			return nil, err
		}
		return haveKey{sub}, nil
	case "contain-element":
		if v.Kind == yaml.SequenceNode {
			return nil, d.Errorf(v, path, "contain-element wants a matcher, a string or a number; for several use contain-elements")
		}
		sub, err := compileMatcher(d, v, path, depth+1)
		if err != nil {
			return nil, err
		}
		return containElement{sub}, nil
	case "contain-elements", "consist-of", "and", "or":
		if v.Kind != yaml.SequenceNode {
			return nil, d.Errorf(v, path, "%s wants a list, got %s", name, yamlx.Describe(v))
		}
		subs, err := compileList(d, v, path, depth)
		if err != nil {
			return nil, err
		}
		switch name {
		case "contain-elements":
			return &containElements{subs: subs, toArray: true}, nil
		case "consist-of":
			return consistOf(subs), nil
		case "and":
			return andMatcher(subs), nil
		}
		return orMatcher(subs), nil
	case "not":
		sub, err := compileMatcher(d, v, path, depth+1)
		if err != nil {
			return nil, err
		}
		return notMatcher{sub}, nil
	case "gt", "ge", "lt", "le":
		x, err := scalarValue(v)
		f, ok := x.(float64)
		if err != nil || !ok {
			return nil, d.Errorf(v, path, "%s wants a number, got %s", name, yamlx.Describe(v))
		}
		return numCmp{op: name, v: f}, nil
	case "semver-constraint":
		s, err := str()
		if err != nil {
			return nil, err
		}
		c, err := version.ParseConstraint(version.Semver, normalizeConstraint(s))
		if err != nil {
			return nil, d.Errorf(v, path, "%v", err)
		}
		return semverMatcher{c}, nil
	case "gjson", "xml":
		return nil, d.Errorf(key, path, "the %s matcher is not supported by imagegate; match the text with match-regexp or have-patterns instead", name)
	}
	return nil, d.Errorf(key, path, "unknown matcher %q%s", name, yamlx.Suggest(name, gossMatcherNames))
}

func compileList(d *yamlx.Decoder, n *yaml.Node, path string, depth int) ([]gossMatcher, error) {
	subs := make([]gossMatcher, 0, len(n.Content))
	for i, c := range n.Content {
		m, err := compileMatcher(d, c, fmt.Sprintf("%s[%d]", path, i), depth+1)
		if err != nil {
			return nil, err
		}
		subs = append(subs, m)
	}
	return subs, nil
}

// scalarValue is a scalar as goss sees it after YAML decoding: nil, bool,
// float64 (every number) or string.
func scalarValue(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil, bool, string, float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	}
	return fmt.Sprint(v), nil
}

// normalize makes decoded YAML and system values comparable: every
// number a float64, every list a []any.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case gossText:
		return string(x)
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

// toString is goss's to-string transform.
func toString(v any) string {
	switch x := normalize(v).(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = toString(e)
		}
		return strings.Join(parts, "\n")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return "<nil>"
	default:
		return fmt.Sprint(x)
	}
}

// toNumeric is goss's to-numeric transform.
func toNumeric(v any) (float64, error) {
	switch x := normalize(v).(type) {
	case float64:
		return x, nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(x), 64)
	case []any:
		return strconv.ParseFloat(strings.TrimSpace(toString(x)), 64)
	}
	return 0, fmt.Errorf("expected a number, got %s", formatActual(v))
}

// elements is goss's to-array transform (a string split on newlines) for
// the array matchers that apply it; ok is false for a non-list.
func elements(v any, splitText bool) ([]any, bool) {
	switch x := normalize(v).(type) {
	case []any:
		return x, true
	case string:
		if splitText {
			return normalize(strings.Split(x, "\n")).([]any), true
		}
	case map[string]any:
		out := make([]any, 0, len(x))
		for _, k := range slices.Sorted(mapKeys(x)) {
			out = append(out, x[k])
		}
		return out, true
	}
	return nil, false
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// formatActual shows a value the way a failure message quotes it.
func formatActual(v any) string {
	switch x := normalize(v).(type) {
	case string:
		return strconv.Quote(truncate(x, 300))
	case float64:
		return toString(x)
	}
	b, err := json.Marshal(normalize(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return truncate(string(b), 300)
}

type eqBool bool

func (m eqBool) match(a any) (bool, string, error) {
	b, ok := a.(bool)
	return ok && b == bool(m), "", nil
}
func (m eqBool) String() string { return strconv.FormatBool(bool(m)) }

type eqNumber struct {
	v    float64
	text string
}

func (m eqNumber) match(a any) (bool, string, error) {
	f, err := toNumeric(a)
	if err != nil {
		return false, "", err
	}
	return f == m.v, "", nil
}
func (m eqNumber) String() string { return m.text }

type eqString string

func (m eqString) match(a any) (bool, string, error) { return toString(a) == string(m), "", nil }
func (m eqString) String() string                    { return strconv.Quote(string(m)) }

type equalMatcher struct{ want any }

func (m equalMatcher) match(a any) (bool, string, error) {
	return reflect.DeepEqual(normalize(a), m.want), "", nil
}
func (m equalMatcher) String() string { return "equal " + formatActual(m.want) }

type strOp struct {
	op, arg string
	re      *regexp.Regexp
}

func (m strOp) match(a any) (bool, string, error) {
	s := toString(a)
	switch m.op {
	case "have-prefix":
		return strings.HasPrefix(s, m.arg), "", nil
	case "have-suffix":
		return strings.HasSuffix(s, m.arg), "", nil
	case "contain-substring":
		return strings.Contains(s, m.arg), "", nil
	}
	return m.re.MatchString(s), "", nil
}
func (m strOp) String() string { return m.op + " " + strconv.Quote(m.arg) }

type haveLen int

func (m haveLen) match(a any) (bool, string, error) {
	switch x := normalize(a).(type) {
	case string:
		return len(x) == int(m), "", nil
	case []any:
		return len(x) == int(m), "", nil
	case map[string]any:
		return len(x) == int(m), "", nil
	}
	return false, "", fmt.Errorf("have-len wants a string, list or mapping, got %s", formatActual(a))
}
func (m haveLen) String() string { return "have-len " + strconv.Itoa(int(m)) }

type haveKey struct{ sub gossMatcher }

func (m haveKey) match(a any) (bool, string, error) {
	x, ok := normalize(a).(map[string]any)
	if !ok {
		return false, "", fmt.Errorf("have-key wants a mapping, got %s", formatActual(a))
	}
	for k := range x {
		if ok, _, err := m.sub.match(k); err == nil && ok {
			return true, "", nil
		}
	}
	return false, "", nil
}
func (m haveKey) String() string { return "have-key " + m.sub.String() }

type containElement struct{ sub gossMatcher }

func (m containElement) match(a any) (bool, string, error) {
	els, ok := elements(a, true)
	if !ok {
		return false, "", fmt.Errorf("contain-element wants a list, got %s", formatActual(a))
	}
	for _, e := range els {
		if ok, _, err := m.sub.match(e); err == nil && ok {
			return true, "", nil
		}
	}
	return false, "", nil
}
func (m containElement) String() string { return "contain-element " + m.sub.String() }

// containElements: each expectation met by a different element (a
// bipartite matching, as gomega's ContainElements), so [group2, group2]
// needs two such elements.
type containElements struct {
	subs []gossMatcher
	// toArray splits a string on newlines (contain-elements does; a bare
	// list, goss's default array matcher, does not).
	toArray bool
}

func (m *containElements) match(a any) (bool, string, error) {
	els, ok := elements(a, m.toArray)
	if !ok {
		return false, "", fmt.Errorf("a list of expectations wants a list, got %s", formatActual(a))
	}
	missing := unmatched(m.subs, els)
	if len(missing) == 0 {
		return true, "", nil
	}
	return false, "missing " + strings.Join(missing, ", "), nil
}
func (m *containElements) String() string { return "contain-elements " + listString(m.subs) }

type consistOf []gossMatcher

func (m consistOf) match(a any) (bool, string, error) {
	els, ok := elements(a, false)
	if !ok {
		return false, "", fmt.Errorf("consist-of wants a list, got %s", formatActual(a))
	}
	missing := unmatched(m, els)
	switch {
	case len(missing) > 0:
		return false, "missing " + strings.Join(missing, ", "), nil
	case len(els) != len(m):
		return false, fmt.Sprintf("%d elements, expected %d", len(els), len(m)), nil
	}
	return true, "", nil
}
func (m consistOf) String() string { return "consist-of " + listString(m) }

func listString(subs []gossMatcher) string {
	parts := make([]string, len(subs))
	for i, s := range subs {
		parts[i] = s.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// unmatched finds a largest matching of expectations to distinct elements
// (augmenting paths) and names the expectations left over.
func unmatched(subs []gossMatcher, els []any) []string {
	ok := make([][]bool, len(subs))
	for i, s := range subs {
		ok[i] = make([]bool, len(els))
		for j, e := range els {
			m, _, err := s.match(e)
			ok[i][j] = m && err == nil
		}
	}
	owner := make([]int, len(els))
	for j := range owner {
		owner[j] = -1
	}
	var try func(i int, seen []bool) bool
	try = func(i int, seen []bool) bool {
		for j := range els {
			if ok[i][j] && !seen[j] {
				seen[j] = true
				if owner[j] < 0 || try(owner[j], seen) {
					owner[j] = i
					return true
				}
			}
		}
		return false
	}
	var missing []string
	for i := range subs {
		if !try(i, make([]bool, len(els))) {
			missing = append(missing, subs[i].String())
		}
	}
	return missing
}

type notMatcher struct{ sub gossMatcher }

func (m notMatcher) match(a any) (bool, string, error) {
	ok, _, err := m.sub.match(a)
	if err != nil {
		return false, "", err
	}
	return !ok, "", nil
}
func (m notMatcher) String() string { return "not " + m.sub.String() }

type andMatcher []gossMatcher

func (m andMatcher) match(a any) (bool, string, error) {
	for _, s := range m {
		ok, detail, err := s.match(a)
		if err != nil || !ok {
			return false, cmpOr(detail, "fails "+s.String()), err
		}
	}
	return true, "", nil
}
func (m andMatcher) String() string { return "and " + listString(m) }

type orMatcher []gossMatcher

func (m orMatcher) match(a any) (bool, string, error) {
	var firstErr error
	for _, s := range m {
		ok, _, err := s.match(a)
		if err == nil && ok {
			return true, "", nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return false, "", firstErr
}
func (m orMatcher) String() string { return "or " + listString(m) }

type numCmp struct {
	op string
	v  float64
}

func (m numCmp) match(a any) (bool, string, error) {
	f, err := toNumeric(a)
	if err != nil {
		return false, "", err
	}
	switch m.op {
	case "gt":
		return f > m.v, "", nil
	case "ge":
		return f >= m.v, "", nil
	case "lt":
		return f < m.v, "", nil
	}
	return f <= m.v, "", nil
}
func (m numCmp) String() string { return m.op + " " + toString(m.v) }

// semverMatcher is goss's semver-constraint: every version must satisfy it.
// The constraint is read by internal/version (semver order), whose grammar
// covers goss's ">1.0.0 <2.0.0 !=1.5.0" and "||".
type semverMatcher struct{ c *version.Constraint }

func (m semverMatcher) match(a any) (bool, string, error) {
	var vs []string
	switch x := normalize(a).(type) {
	case string:
		vs = []string{x}
	case []any:
		for _, e := range x {
			vs = append(vs, toString(e))
		}
	default:
		return false, "", fmt.Errorf("semver-constraint wants a version or a list of versions, got %s", formatActual(a))
	}
	for _, v := range vs {
		if !m.c.Match(v) {
			return false, v + " does not satisfy it", nil
		}
	}
	return true, "", nil
}
func (m semverMatcher) String() string { return "semver-constraint " + strconv.Quote(m.c.String()) }

// gossPatterns is goss's have-patterns, the default for a list given to a
// text attribute: each pattern must be found on some line ("foo" a
// substring, "/re/" or "/re/i" a regular expression), and an inverted one
// ("!foo", "!/re/") on none.
type gossPatterns []gossPattern

type gossPattern struct {
	text    string // as written
	inverse bool
	sub     string         // for a substring pattern
	re      *regexp.Regexp // for a regular expression
}

func compilePatterns(d *yamlx.Decoder, n *yaml.Node, path string) (gossMatcher, error) {
	var out gossPatterns
	for i, c := range n.Content {
		c = resolveAlias(c)
		p := fmt.Sprintf("%s[%d]", path, i)
		if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
			return nil, d.Errorf(c, p, "a pattern is a string (\"foo\", \"!foo\", \"/regex/\"), got %s", yamlx.Describe(c))
		}
		pat, err := parsePattern(c.Value)
		if err != nil {
			return nil, d.Errorf(c, p, "invalid regular expression: %v", err)
		}
		out = append(out, pat)
	}
	return out, nil
}

// parsePattern reads one pattern as goss's have-patterns does: a regular
// expression is "/…/" with optional i, m, s flags after the closing slash
// and an optional leading "!"; otherwise every leading "\", "/" and "!" is
// stripped and the rest is a substring. goss's code, not its docs, is
// followed: "\\!foo" looks for "foo", not "!foo".
func parsePattern(s string) (gossPattern, error) {
	p := gossPattern{text: s, inverse: strings.HasPrefix(s, "!")}
	if isRegexPattern(s) {
		core := strings.TrimPrefix(s, "!")[1:]
		idx := strings.LastIndex(core, "/")
		expr, flags := core[:idx], core[idx+1:]
		if flags != "" {
			expr = "(?" + flags + ")" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return p, err
		}
		p.re = re
		return p, nil
	}
	p.sub = strings.TrimLeft(s, `\/!`)
	return p, nil
}

func isRegexPattern(s string) bool {
	core, ok := strings.CutPrefix(strings.TrimPrefix(s, "!"), "/")
	if !ok {
		return false
	}
	idx := strings.LastIndex(core, "/")
	if idx < 0 {
		return false
	}
	return strings.Trim(core[idx+1:], "ims") == ""
}

func (p gossPattern) matchLine(line string) bool {
	if p.re != nil {
		return p.re.MatchString(line)
	}
	return strings.Contains(line, p.sub)
}

func (m gossPatterns) match(a any) (bool, string, error) {
	var text string
	switch x := a.(type) {
	case gossText:
		text = string(x)
	case string:
		text = x
	case []string:
		text = strings.Join(x, "\n")
	default:
		return false, "", fmt.Errorf("patterns want text, got %s", formatActual(a))
	}
	pending := slices.Clone([]gossPattern(m))
	var failed []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for len(pending) > 0 && sc.Scan() {
		line := sc.Text()
		kept := pending[:0]
		for _, p := range pending {
			switch {
			case !p.matchLine(line):
				kept = append(kept, p)
			case p.inverse:
				failed = append(failed, fmt.Sprintf("%q found: %q", p.text, truncate(line, 200)))
			}
		}
		pending = kept
	}
	if err := sc.Err(); err != nil {
		return false, "", err
	}
	for _, p := range pending {
		// An inverted pattern never seen is met; so is an empty one, even
		// on empty text.
		if !p.inverse && p.text != "" {
			failed = append(failed, fmt.Sprintf("%q not found", p.text))
		}
	}
	if len(failed) == 0 {
		return true, "", nil
	}
	return false, strings.Join(failed, "; "), nil
}

func (m gossPatterns) String() string {
	parts := make([]string, len(m))
	for i, p := range m {
		parts[i] = strconv.Quote(p.text)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
