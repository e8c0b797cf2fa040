package diff

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/imagegate/imagegate/internal/yamlx"
)

// Actions a changes file may declare, and the class of change each one
// covers.
var actionClass = map[string]string{
	"add":       ClassAdded,
	"remove":    ClassRemoved,
	"upgrade":   ClassUpgraded,
	"downgrade": ClassDowngraded,
	"break":     ClassBroken,
	"fix":       ClassFixed,
}

// ActionFor is the changes-file action that declares a change of class
// ("remove" for ClassRemoved); "" for a class no action declares.
func ActionFor(class string) string {
	for action, c := range actionClass {
		if c == class {
			return action
		}
	}
	return ""
}

const actionList = "add, remove, upgrade, downgrade, break, fix"

// ErrChanges is wrapped by every error ParseChanges returns.
var ErrChanges = errors.New("invalid changes file")

// Changes is a parsed changes file: the changes an image maintainer means to
// make, so that the gate lets them through.
//
//	changes:
//	  - remove: tool/php*
//	  - downgrade: package/deb/libssl*
//	  - break: runtime/python@2.7/module/*
//	    reason: Python 2.7 is leaving the image
//	  - remove: [tool/composer, tool/phpunit]   # several patterns, one reason
type Changes struct {
	// Name is the file name used in messages and in the report.
	Name         string
	Declarations []Declaration
}

// Declaration is one intended change: an action and one ID pattern.
//
// Patterns are matched against whole change IDs (see SCHEMA.md): "*" matches
// any run of characters except "/", "**" any run including "/", "?" one
// character except "/". A pattern without ":" also matches a package ID
// whose ":arch" suffix is dropped, so "package/deb/libssl3" covers
// "package/deb/libssl3:amd64".
type Declaration struct {
	Action  string `json:"action"`
	Pattern string `json:"pattern"`
	Reason  string `json:"reason,omitempty"`
	// File and Line say where it was declared.
	File string `json:"file"`
	Line int    `json:"line"`
}

// ParseChanges parses a changes file. Errors wrap ErrChanges and a
// *yamlx.Error naming the file and line, e.g.
// `changes.yaml:4: unknown action "delete"; use one of add, remove, …`.
// An empty file declares nothing.
func ParseChanges(name string, data []byte) (*Changes, error) {
	ch := &Changes{Name: name}
	top, err := yamlx.Parse(name, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChanges, err)
	}
	if top == nil || yamlx.IsNull(top) {
		return ch, nil
	}
	fail := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("%w: %w", ErrChanges, yamlx.Errorf(name, n, "", format, args...))
	}
	if top.Kind != yaml.MappingNode {
		return nil, fail(top, "expected a mapping with a \"changes:\" list")
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Value != "changes" {
			return nil, fail(k, "unknown key %q; the file holds one \"changes:\" list", k.Value)
		}
		if yamlx.IsNull(v) {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			return nil, fail(v, "\"changes\" must be a list of items such as \"- remove: tool/php*\"")
		}
		for _, item := range v.Content {
			ds, err := parseItem(name, item, fail)
			if err != nil {
				return nil, err
			}
			ch.Declarations = append(ch.Declarations, ds...)
		}
	}
	return ch, nil
}

func parseItem(name string, item *yaml.Node, fail func(*yaml.Node, string, ...any) error) ([]Declaration, error) {
	if item.Kind != yaml.MappingNode {
		return nil, fail(item, "each change is a mapping such as \"- remove: tool/php*\"")
	}
	var (
		action   string
		patterns []*yaml.Node
		reason   string
	)
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		switch {
		case k.Value == "reason":
			if v.Kind != yaml.ScalarNode {
				return nil, fail(v, "reason must be text")
			}
			reason = v.Value
		case actionClass[k.Value] != "":
			if action != "" {
				return nil, fail(k, "one action per item: %q and %q; split them into two items", action, k.Value)
			}
			action = k.Value
			switch v.Kind {
			case yaml.ScalarNode:
				patterns = []*yaml.Node{v}
			case yaml.SequenceNode:
				for _, p := range v.Content {
					if p.Kind != yaml.ScalarNode {
						return nil, fail(p, "%s: each pattern is a string such as tool/php*", action)
					}
				}
				patterns = v.Content
			default:
				return nil, fail(v, "%s: expected a pattern such as tool/php* or a list of them", action)
			}
		default:
			return nil, fail(k, "unknown action %q; use one of %s", k.Value, actionList)
		}
	}
	if action == "" {
		return nil, fail(item, "no action; use one of %s", actionList)
	}
	if len(patterns) == 0 {
		return nil, fail(item, "%s: no pattern", action)
	}
	out := make([]Declaration, 0, len(patterns))
	for _, p := range patterns {
		if err := checkPattern(p.Value); err != nil {
			return nil, fail(p, "%s %q: %v", action, p.Value, err)
		}
		out = append(out, Declaration{Action: action, Pattern: p.Value, Reason: reason, File: name, Line: p.Line})
	}
	return out, nil
}

// ReadChanges reads and parses a changes file; messages name it by path.
func ReadChanges(path string) (*Changes, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path comes first already
		}
		return nil, fmt.Errorf("%s: cannot read the changes file: %w", path, err)
	}
	return ParseChanges(path, data)
}

// checkPattern catches typos that would make a declaration silently match
// nothing.
func checkPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	first, _, _ := strings.Cut(p, "/")
	if strings.ContainsAny(first, "*?") {
		return nil
	}
	switch first {
	case "os", "package", "runtime", "tool":
		return nil
	}
	return errors.New("IDs start with os/, package/, runtime/ or tool/ (e.g. tool/php*, runtime/python@3.7/module/sqlite3)")
}

// Covers reports whether the declaration covers a change of class (ClassRemoved, …) to the entry id.
func (d *Declaration) Covers(class, id string) bool {
	if actionClass[d.Action] != class {
		return false
	}
	if glob(d.Pattern, id) {
		return true
	}
	if strings.HasPrefix(id, "package/") && !strings.Contains(d.Pattern, ":") {
		if i := strings.LastIndexByte(id, ':'); i > 0 {
			return glob(d.Pattern, id[:i])
		}
	}
	return false
}

// glob matches name against pattern: "**" any run, "*" any run without "/",
// "?" one byte other than "/"; everything else literally. The "/" of an
// install root in brackets (runtime/python@3.11[/usr]) is not a separator:
// runtime/python@*/module/x matches every install's module x. It remembers
// failed positions, so patterns with many stars stay linear in practice
// (O(len(pattern)·len(name)) at worst).
func glob(pattern, name string) bool {
	var inRoot []bool
	if strings.IndexByte(name, '[') >= 0 {
		inRoot = make([]bool, len(name))
		depth := 0
		for i := range len(name) {
			switch name[i] {
			case '[':
				depth++
			case ']':
				depth = max(depth-1, 0)
			}
			inRoot[i] = depth > 0
		}
	}
	sep := func(i int) bool { return name[i] == '/' && (inRoot == nil || !inRoot[i]) }
	var failed map[[2]int]bool
	var match func(p, n int) bool
	match = func(p, n int) bool {
		for p < len(pattern) {
			switch pattern[p] {
			case '*':
				key := [2]int{p, n}
				if failed[key] {
					return false
				}
				double := p+1 < len(pattern) && pattern[p+1] == '*'
				q := p + 1
				for q < len(pattern) && pattern[q] == '*' {
					q++
				}
				for i := n; i <= len(name); i++ {
					if match(q, i) {
						return true
					}
					if i < len(name) && sep(i) && !double {
						break
					}
				}
				if failed == nil {
					failed = map[[2]int]bool{}
				}
				failed[key] = true
				return false
			case '?':
				if n == len(name) || sep(n) {
					return false
				}
			default:
				if n == len(name) || name[n] != pattern[p] {
					return false
				}
			}
			p++
			n++
		}
		return n == len(name)
	}
	return match(0, 0)
}
