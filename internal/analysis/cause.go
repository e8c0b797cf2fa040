package analysis

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/imagegate/imagegate/internal/diff"
)

// Cause is a change of the rollout's diff that may explain a signature.
type Cause struct {
	Change diff.Change `json:"change"`
	// Failing is true for a change that fails the diff gate or is part of
	// one (removed, broken, downgraded, unexpected): ranked first.
	Failing bool `json:"failing"`
	// Score is the strength of the token match (higher is closer); Why
	// names the tokens that matched and where.
	Score int    `json:"score"`
	Why   string `json:"why"`
}

// Scores of one token match by how much of the names had to be stripped:
// the same token (`_sqlite3` = module _sqlite3, `libsqlite3.so.0` = a
// missing library), the same stem (`libsqlite3.so.0` ~ libsqlite3-0), the
// same stem without trailing digits (sqlite3 ~ sqlite).
const (
	scoreExact = 4
	scoreStem  = 2
	scoreBare  = 1
)

// ProbableCause ranks changes by how well they match the tokens of a
// signature's template and examples and returns at most limit of them
// (all when limit ≤ 0) with a positive score: failing changes first, then
// by score, then in the diff's order. A change is matched by the last part
// of its identity (module sqlite3, package libsqlite3-0), its evidence and
// missing libraries, and the changes that are part of it (diff.Change.PartOf:
// module _sqlite3 is part of module sqlite3's breakage), whose matches it
// inherits. It is pure and cheap: a diff has thousands of changes at most.
func ProbableCause(template string, examples []string, changes []diff.Change, limit int) []Cause {
	sig := map[string]bool{}
	for _, text := range append([]string{template}, examples...) {
		for _, t := range tokens(text) {
			sig[t] = true
		}
	}
	sigForms := map[string]form{}
	for t := range sig {
		for _, f := range forms(t) {
			if old, ok := sigForms[f.text]; !ok || f.level < old.level {
				sigForms[f.text] = f
			}
		}
	}

	type scored struct {
		i       int
		score   int
		matches []string
	}
	own := make([]scored, len(changes))
	for i, c := range changes {
		own[i] = scored{i: i}
		own[i].score, own[i].matches = matchChange(&c, sigForms)
	}
	// A change inherits what the changes that are part of it matched: the
	// public module is the entry users see.
	byID := map[string][]int{}
	for i, c := range changes {
		byID[c.ID] = append(byID[c.ID], i)
	}
	total := slices.Clone(own)
	for i, c := range changes {
		if c.PartOf == "" || own[i].score == 0 {
			continue
		}
		for _, j := range byID[c.PartOf] {
			total[j].score += own[i].score
			for _, m := range own[i].matches {
				total[j].matches = append(total[j].matches, m+" (via "+c.ID+", part of it)")
			}
		}
	}

	var out []Cause
	for i, s := range total {
		if s.score == 0 {
			continue
		}
		c := changes[i]
		out = append(out, Cause{Change: c, Failing: failingChange(&c), Score: s.score,
			Why: fmt.Sprintf("%s %s: %s", c.Class, c.ID, strings.Join(s.matches, "; "))})
	}
	slices.SortStableFunc(out, func(a, b Cause) int {
		if a.Failing != b.Failing {
			if a.Failing {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.Score, a.Score)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

func failingChange(c *diff.Change) bool {
	return c.Unexpected || c.PartOf != "" || c.Class == diff.ClassRemoved || c.Class == diff.ClassBroken || c.Class == diff.ClassDowngraded
}

// matchChange scores one change's own names against the signature's forms.
func matchChange(c *diff.Change, sig map[string]form) (int, []string) {
	type source struct{ what, text string }
	name := entryName(c.ID)
	srcs := []source{{"name", name}}
	for _, t := range tokens(c.Evidence) {
		srcs = append(srcs, source{"evidence", t})
	}
	for _, lib := range c.MissingLibraries {
		srcs = append(srcs, source{"missing library", lib})
	}
	best := map[string]struct {
		score int
		what  string
	}{} // signature token -> its best match in this change
	for _, s := range srcs {
		for _, f := range forms(s.text) {
			g, ok := sig[f.text]
			if !ok {
				continue
			}
			score := scoreExact
			switch max(f.level, g.level) {
			case 1:
				score = scoreStem
			case 2:
				score = scoreBare
			}
			if b, ok := best[g.token]; !ok || score > b.score {
				best[g.token] = struct {
					score int
					what  string
				}{score, fmt.Sprintf("`%s` in the signature matches %s %s", g.token, s.what, s.text)}
			}
		}
	}
	total := 0
	var why []string
	for _, b := range best {
		total += b.score
		why = append(why, b.what)
	}
	slices.Sort(why)
	return total, why
}

// entryName is the part of a diff identity that names the thing: sqlite3
// in runtime/python@3.7/module/sqlite3, libsqlite3-0 in
// package/deb/libsqlite3-0:amd64, python in runtime/python@3.7.
func entryName(id string) string {
	name := id[strings.LastIndexByte(id, '/')+1:]
	if strings.HasPrefix(id, "package/") {
		name, _, _ = strings.Cut(name, ":")
	}
	name, _, _ = strings.Cut(name, "@")
	return name
}

// form is one way of writing a token, stripped to level 0 (as written),
// 1 (without lib, .so, leading underscores, version suffixes) or 2 (also
// without trailing digits).
type form struct {
	token string
	text  string
	level int
}

// forms returns a token's forms: `libsqlite3.so.0` → libsqlite3.so.0,
// libsqlite3, sqlite3 (1) and sqlite (2); `libsqlite3-0` → libsqlite3-0,
// sqlite3 (1), sqlite (2); `_sqlite3` → _sqlite3, sqlite3 (1), sqlite (2).
// Dotted names also give their parts at level 1 (sqlite3.OperationalError
// names sqlite3).
func forms(token string) []form {
	t := strings.ToLower(token)
	if len(t) < 2 || stopwords[t] {
		return nil
	}
	out := []form{{token, t, 0}}
	add := func(s string, level int) {
		if len(s) < 3 || stopwords[s] {
			return
		}
		for _, f := range out {
			if f.text == s {
				return
			}
		}
		out = append(out, form{token, s, level})
	}
	stem := func(s string) string {
		if i := strings.Index(s, ".so"); i > 0 && (i+3 == len(s) || s[i+3] == '.') {
			s = s[:i]
		}
		s = strings.TrimPrefix(s, "lib")
		s = strings.TrimLeft(s, "_")
		// A Debian package's soname suffix: libsqlite3-0, libssl1.1.
		if i := strings.LastIndexAny(s, "-"); i > 0 && isVersion(s[i+1:]) {
			s = s[:i]
		}
		return s
	}
	// A shared library's Debian package: libsqlite3.so.0 is in
	// libsqlite3-0 (the name ends in a digit, so a hyphen), libssl.so.3 in
	// libssl3 (Debian policy 8.1).
	if lib, ver, ok := strings.Cut(t, ".so."); ok && isVersion(ver) {
		major, _, _ := strings.Cut(ver, ".")
		if lib != "" && unicode.IsDigit(rune(lib[len(lib)-1])) {
			add(lib+"-"+major, 0)
		} else {
			add(lib+major, 0)
		}
	}
	parts := []string{t}
	if strings.Contains(t, ".") && !strings.Contains(t, ".so") {
		parts = append(parts, strings.Split(t, ".")...)
	}
	for _, p := range parts {
		s := stem(p)
		add(s, 1)
		add(strings.TrimRightFunc(s, unicode.IsDigit), 2)
	}
	return out
}

func isVersion(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsDigit(r) && r != '.' {
			return false
		}
	}
	return true
}

// tokens splits text into identifier-like tokens: letters, digits and
// _ . - + kept together, quotes and punctuation dropped, trailing dots cut.
func tokens(text string) []string {
	f := strings.FieldsFunc(text, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '.' || r == '-' || r == '+')
	})
	out := f[:0]
	for _, t := range f {
		t = strings.Trim(t, ".-+")
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// stopwords are words of error messages that name nothing in an image.
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an the and or of in on at to for from with by is are was be been not no
		error errors err fatal fail failed failure exception traceback recent call last most file line files
		module modules named import importerror modulenotfounderror cannot can could open shared object such
		directory found missing lib so usr bin local opt share exit code status returned process command
		python python3 node java go ruby run running step job test tests warning info debug true false none null
		version package packages type value key name path self main`) {
		m[w] = true
	}
	return m
}()
