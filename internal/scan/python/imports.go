package python

import (
	"strings"
)

// Import is one module-level import statement.
type Import struct {
	// Module is the dotted module name after "import" or "from", without
	// the leading dots of a relative import.
	Module string
	// Level is the number of leading dots (0 for an absolute import).
	Level int
	// Names are what "from Module import a, b" imports (possibly
	// submodules); empty for "import Module" and for "*".
	Names []string
	// From is true for "from … import …".
	From bool
}

// TopLevelImports returns the import statements of a Python source file
// that run unconditionally when it is imported: those that start a logical
// line in column 0, i.e. are not inside a def, class, if, try or with block.
// Text inside strings (docstrings included) and comments is ignored. It is
// a scanner, not a parser: it never fails, and on source that is not valid
// Python it returns whatever import statements it recognises.
func TopLevelImports(src []byte) []Import {
	var out []Import
	var (
		logical    strings.Builder
		col0       = true // the current logical line started in column 0
		depth      int    // open brackets
		quote      byte   // the open string's quote character, 0 outside
		triple     bool
		continued  bool // backslash at the end of the previous line
		lineStart  = true
		discarding bool // the logical line cannot be an import: stop copying
	)
	flush := func() {
		if col0 && !discarding {
			out = appendImports(out, logical.String())
		}
		logical.Reset()
		col0, discarding = true, false
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if lineStart && quote == 0 && depth == 0 && !continued {
			// A new logical line: it is a candidate only if it starts in
			// column 0 with "import" or "from".
			col0 = c == 'i' || c == 'f'
			discarding = !col0
		}
		lineStart = false
		if quote != 0 {
			switch {
			case c == '\\':
				i++ // the escaped character cannot end the string
				if i < len(src) && src[i] == '\n' {
					lineStart = true
				}
			case c == '\n':
				lineStart = true
				if !triple { // unterminated: Python would reject it; recover
					quote = 0
					flush()
				}
			case c == quote && (!triple || (i+2 < len(src) && src[i+1] == quote && src[i+2] == quote)):
				if triple {
					i += 2
				}
				quote = 0
			}
			continue
		}
		switch c {
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i-- // let the newline be handled below
			continue
		case '"', '\'':
			quote = c
			triple = i+2 < len(src) && src[i+1] == c && src[i+2] == c
			if triple {
				i += 2
			}
			discarding = true // imports hold no strings
			continue
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
		case '\\':
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
				continued = true
				lineStart = true
				logical.WriteByte(' ')
				continue
			}
		case '\n':
			lineStart = true
			continued = false
			if depth == 0 {
				flush()
			} else {
				logical.WriteByte(' ')
			}
			continue
		}
		if !discarding && logical.Len() < 4096 {
			logical.WriteByte(c)
		}
	}
	flush()
	return out
}

// appendImports parses one logical line (possibly several statements
// joined with ";") and appends the imports it holds.
func appendImports(out []Import, line string) []Import {
	for _, stmt := range strings.Split(line, ";") {
		stmt = strings.TrimSpace(stmt)
		fields := strings.Fields(stmt)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "import":
			for _, part := range strings.Split(strings.TrimPrefix(stmt, "import"), ",") {
				name := firstWord(part)
				if validDotted(name) {
					out = append(out, Import{Module: name})
				}
			}
		case "from":
			rest := strings.TrimSpace(strings.TrimPrefix(stmt, "from"))
			mod, names, ok := strings.Cut(rest, " import")
			if !ok {
				continue
			}
			mod = strings.TrimSpace(mod)
			level := len(mod) - len(strings.TrimLeft(mod, "."))
			mod = strings.TrimSpace(mod[level:])
			if (mod != "" && !validDotted(mod)) || (mod == "" && level == 0) {
				continue
			}
			imp := Import{Module: mod, Level: level, From: true}
			names = strings.NewReplacer("(", " ", ")", " ").Replace(names)
			for _, part := range strings.Split(names, ",") {
				n := firstWord(part)
				if n != "" && n != "*" && validDotted(n) && !strings.Contains(n, ".") {
					imp.Names = append(imp.Names, n)
				}
			}
			out = append(out, imp)
		}
	}
	return out
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func validDotted(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if !identifier(part) {
			return false
		}
	}
	return true
}

// identifier reports whether s is an ASCII Python identifier; every
// standard-library module name is one.
func identifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
