// Package archtest holds the test that keeps imagegate's dependency graph
// pointing inward: everything may use the snapshot schema, the snapshot
// uses nothing of ours but the report helpers and the version orders (its
// tables list 3.6 before 3.10), those
// and CPython's facts (internal/cpython) use nothing of ours at all, the image on
// disk has one model (internal/source) that the scan and the check share
// while the check never reaches into the scan, and no package reaches back
// into the command.
package archtest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/imagegate/imagegate/"

// forbidden maps a package (prefix) to the packages (prefixes) it must not
// import, directly or indirectly.
var forbidden = map[string][]string{
	"internal/":          {"cmd/"},
	"internal/snapshot":  {"internal/scan", "internal/source", "internal/sandbox", "internal/diff", "internal/check", "internal/cpython", "internal/junit", "internal/rollout", "internal/store", "internal/server", "internal/api"},
	"internal/cpython":   {"internal/"},
	"internal/source":    {"internal/scan", "internal/diff", "internal/check"},
	"internal/sandbox":   {"internal/scan", "internal/source", "internal/diff", "internal/check"},
	"internal/diff":      {"internal/scan", "internal/source", "internal/sandbox", "internal/check"},
	"internal/version":   {"internal/"},
	"internal/check":     {"internal/scan", "internal/store", "internal/server"},
	"internal/report":    {"internal/"},
	"internal/signature": {"internal/"}, // the standard library only
	"internal/yamlx":     {"internal/"},
	"internal/rollout":   {"internal/store", "internal/server", "internal/scan", "internal/source", "internal/sandbox"},
	// alert reaches diff only through rollout's decision (rollout → analysis → diff).
	"internal/alert": {"internal/store", "internal/server", "internal/scan", "internal/source", "internal/sandbox", "internal/check"},
	// The stores reach diff only through rollout's decision (rollout → analysis → diff).
	"internal/store/":         {"internal/server", "internal/scan", "internal/source", "internal/sandbox", "internal/check"},
	"internal/store/sqlite":   {"internal/store/postgres"},
	"internal/store/postgres": {"internal/store/sqlite"},
	// batch wraps any store's run assignments; it knows no store.
	"internal/store/batch": {"internal/store/sqlite", "internal/store/postgres", "internal/store/storetest", "internal/store/page"},
	"internal/server":      {"internal/store", "internal/scan", "internal/source", "internal/sandbox", "internal/config"},
	// config reaches diff only through rollout's decision (rollout → analysis → diff).
	"internal/config":        {"internal/store", "internal/server", "internal/scan", "internal/source", "internal/sandbox", "internal/check"},
	"internal/apiclient":     {"internal/store", "internal/server"},
	"internal/api":           {"internal/store", "internal/server", "internal/scan", "internal/source", "internal/sandbox"},
	"internal/scan/ldso":     {"internal/scan/python", "internal/scan/ospkg", "internal/scan/runtimes", "internal/scan/tools"},
	"internal/scan/ospkg":    {"internal/scan/python", "internal/scan/runtimes", "internal/scan/tools", "internal/check", "internal/diff"},
	"internal/scan/tools":    {"internal/scan/python", "internal/scan/ospkg", "internal/scan/runtimes", "internal/check", "internal/diff"},
	"internal/scan/runtimes": {"internal/scan/python", "internal/scan/ospkg", "internal/scan/tools", "internal/check", "internal/diff"},
	"internal/scan/python":   {"internal/scan/ospkg", "internal/scan/runtimes", "internal/scan/tools", "internal/check", "internal/diff"},
	"internal/testenv":       {"internal/"},
	// The parts-sweep driver serves the collectors from below them.
	"internal/scan/sweep": {"internal/scan/python", "internal/scan/ospkg", "internal/scan/runtimes", "internal/scan/tools", "internal/scan/ldso", "internal/check", "internal/diff"},
	// tlscert is plumbing the server side and the client side share.
	"internal/tlscert": {"internal/"},
	// verify is the re-verification worker: a client of the API that pulls
	// and scans; the server judges, so it reaches no store or server.
	"internal/verify": {"internal/server", "internal/store", "internal/config", "internal/alert"},

	// sbom renders a snapshot for SBOM readers: the schema and the diff
	// identities in, a document out; never the scanner, a store or the server.
	"internal/sbom": {"internal/scan", "internal/source", "internal/sandbox", "internal/check", "internal/rollout",
		"internal/store", "internal/server", "internal/api", "internal/verify"},

	// analysis is the pure decision core the rollout controller calls: the
	// snapshot and diff vocabularies in, a decision out, nothing that does I/O.
	// simulate drives the control plane through its public API on a real
	// store, as a runner and an operator would: never through the HTTP
	// server or its wire types, never the scanner (diff comes with rollout,
	// whose analysis ranks a version's diff).
	"internal/simulate": {"internal/server", "internal/api", "internal/apiclient", "internal/scan", "internal/source",
		"internal/sandbox", "internal/check"},

	// client is linked into runners outside the module: the wire contract
	// and its HTTP client only, never the server, a store or the scanner.
	"client": {"cmd/", "internal/server", "internal/store", "internal/config", "internal/alert", "internal/scan",
		"internal/source", "internal/sandbox", "internal/check", "internal/verify", "internal/simulate"},

	// ui is the dashboard the server mounts: the domain through small
	// interfaces, never the server, a store, the config or the scanner.
	"internal/ui": {"internal/server", "internal/store", "internal/config", "internal/scan", "internal/source",
		"internal/sandbox", "internal/check", "internal/apiclient", "internal/alert", "internal/verify"},

	"internal/analysis": {"internal/rollout", "internal/store", "internal/server", "internal/api", "internal/apiclient",
		"internal/scan", "internal/source", "internal/sandbox", "internal/check"},
}

// testSupport are the packages only tests may import: go list's Deps leave
// test imports out, so no package may have them there.
var testSupport = []string{"internal/testenv", "internal/store/storetest"}

func TestImportsPointInward(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-json=ImportPath,Deps", "github.com/imagegate/imagegate/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		pkg := strings.TrimPrefix(p.ImportPath, module)
		for _, dep := range p.Deps {
			for _, ts := range testSupport {
				if d := strings.TrimPrefix(dep, module); d != dep && strings.HasPrefix(d, ts) && !strings.HasPrefix(pkg, ts) {
					t.Errorf("%s imports %s: only tests may import test-support packages", pkg, d)
				}
			}
		}
		for from, banned := range forbidden {
			if !strings.HasPrefix(pkg, from) {
				continue
			}
			for _, dep := range p.Deps {
				d := strings.TrimPrefix(dep, module)
				if d == dep {
					continue // not ours
				}
				for _, b := range banned {
					if strings.HasPrefix(d, b) && !strings.HasPrefix(d, from) {
						t.Errorf("%s imports %s: dependencies must point inward (rule %s ↛ %s)", pkg, d, from, b)
					}
				}
			}
		}
	}
	if seen < 3 {
		t.Fatalf("go list saw only %d packages", seen)
	}
}
