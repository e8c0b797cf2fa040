package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/testenv"
	"github.com/itchyny/gojq"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"imagegate": func() { os.Exit(runMain(os.Args[1:])) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script: the real
// binary against fixtures built from this machine's CPython builds. Each
// script states what it needs as a condition (see need), so a machine
// without one build skips only the scripts that use it.
func TestScripts(t *testing.T) {
	versions := testenv.PyenvDir()
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Condition:           need(versions),
		Setup: func(env *testscript.Env) error {
			env.Setenv("PYENV_VERSIONS", versions)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"linktree": cmdLinkTree,
			"rmglob":   cmdRmGlob,
			"jq":       cmdJQ,
			"status":   cmdStatus,
		},
	})
}

// need answers a script's condition about the machine: [python:VERSION]
// (a pyenv build in $PYENV_VERSIONS), [root], [tool:NAME]. A script
// states each need as "[!python:3.7.16] skip"; under CI=true a missing one
// is an error instead, so that the script fails rather than skips, as
// testenv.Require does for Go tests.
func need(versions string) func(cond string) (bool, error) {
	return func(cond string) (bool, error) {
		kind, arg, _ := strings.Cut(cond, ":")
		var ok bool
		var why string
		switch kind {
		case "python":
			exe := filepath.Join(versions, arg, "bin", "python"+minorOf(arg))
			_, err := os.Stat(exe)
			ok, why = err == nil, fmt.Sprintf("no CPython %s build: %v", arg, err)
		case "root":
			ok, why = os.Geteuid() == 0, "needs root"
		case "tool":
			_, err := exec.LookPath(arg)
			ok, why = err == nil, fmt.Sprintf("%s not installed: %v", arg, err)
		default:
			return false, fmt.Errorf("unknown condition %q (want python:VERSION, root or tool:NAME)", cond)
		}
		if !ok && testenv.CI() {
			return false, fmt.Errorf("%s (CI=true: not skipping)", why)
		}
		return ok, nil
	}
}

// minorOf returns "X.Y" of "X.Y.Z".
func minorOf(version string) string {
	x, rest, _ := strings.Cut(version, ".")
	y, _, _ := strings.Cut(rest, ".")
	return x + "." + y
}

// cmdLinkTree copies a directory tree with linkTree.
func cmdLinkTree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: linktree SRC DST")
	}
	ts.Check(linkTree(ts.MkAbs(args[0]), ts.MkAbs(args[1])))
}

// cmdRmGlob removes every file matching a glob and fails when none does, so
// a script cannot silently stop testing what it meant to.
func cmdRmGlob(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: rmglob PATTERN")
	}
	matches, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(matches) == 0 {
		ts.Fatalf("rmglob: nothing matches %s", args[0])
	}
	for _, m := range matches {
		ts.Check(os.Remove(m))
	}
	fmt.Fprintf(ts.Stdout(), "removed %d\n", len(matches))
}

// cmdJQ evaluates a jq filter (gojq, in process, so the tests need no jq
// on the machine) over a JSON file: jq [-r] FILTER FILE.
func cmdJQ(ts *testscript.TestScript, neg bool, args []string) {
	raw := len(args) > 0 && args[0] == "-r"
	if raw {
		args = args[1:]
	}
	if len(args) != 2 {
		ts.Fatalf("usage: jq [-r] FILTER FILE")
	}
	query, err := gojq.Parse(args[0])
	ts.Check(err)
	var input any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &input))
	iter := query.Run(input)
	failed := false
	for {
		v, ok := iter.Next()
		if !ok {
			break
		}
		if err, isErr := v.(error); isErr {
			failed = true
			fmt.Fprintf(ts.Stderr(), "jq: %v\n", err)
			break
		}
		if s, isStr := v.(string); raw && isStr {
			fmt.Fprintln(ts.Stdout(), s)
			continue
		}
		// encoding/json sorts object keys: stable output to compare.
		out, err := json.Marshal(v)
		ts.Check(err)
		fmt.Fprintln(ts.Stdout(), string(out))
	}
	if failed != neg {
		ts.Fatalf("jq: unexpected result")
	}
}

// cmdStatus runs a command and asserts its exact exit code: status N CMD
// ARGS... The exit codes are a contract (1: the gate fails, 2: bad input),
// which "! exec" alone cannot tell apart.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = exit.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", strings.Join(args[1:], " "), got, want)
	}
}
