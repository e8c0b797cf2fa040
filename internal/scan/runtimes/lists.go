package runtimes

import (
	"embed"
	"strings"
	"sync"
)

// The standard parts each runtime version should have, generated from real
// installations by scripts/gen-runtime-lists (never kept by hand): the
// modules of a full JDK per feature version, Node.js's built-in modules per
// major, Ruby's extension libraries per X.Y, Go's standard packages per X.Y,
// Perl's core modules per X.Y (a line "NAME xs" for a module with a
// loadable object).
//
//go:embed lists/*.txt
var listFS embed.FS

var loadPartLists = sync.OnceValue(func() map[string][]string {
	lists := map[string][]string{}
	entries, _ := listFS.ReadDir("lists")
	for _, e := range entries {
		b, err := listFS.ReadFile("lists/" + e.Name())
		if err != nil {
			continue
		}
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				names = append(names, line)
			}
		}
		lists[strings.TrimSuffix(e.Name(), ".txt")] = names
	}
	return lists
})

// ExpectedParts returns the generated list of standard parts for a runtime
// kind's release series ("java", "17"; "node", "20"; "ruby", "3.1";
// "perl", "5.36"), and whether there is one.
func ExpectedParts(kind, series string) ([]string, bool) {
	l, ok := loadPartLists()[kind+"-"+series]
	return append([]string(nil), l...), ok
}
