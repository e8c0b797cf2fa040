package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/testenv"
)

const incidentAdmin = "incident-test-admin-token"

// TestSqliteIncident is the 2019 incident replayed against a real server:
// a CPython 3.7 tool cache loses _sqlite3 in the next image version, which
// is forced past the failing gate and rolled out. Runners resolve their
// version, run the real interpreter of that version's tool cache and
// report what happened, among background failures on both versions. The
// telemetry analysis must roll the version back while it is in ring 0,
// resolve must return the old version again, and the webhook must be told
// why: the _sqlite3 signature and runtime/python@3.7/module/sqlite3 as its
// probable cause.
func TestSqliteIncident(t *testing.T) {
	began := time.Now()
	py := testenv.RequirePython(t, "3.7")
	pyVersion := filepath.Base(py)
	dir := t.TempDir()

	// Two tool caches: the build as it is, and the same without _sqlite3.
	oldCache, newCache := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	for _, cache := range []string{oldCache, newCache} {
		if err := linkTree(py, filepath.Join(cache, "Python", pyVersion, "x64")); err != nil {
			t.Fatal(err)
		}
	}
	removed, _ := filepath.Glob(filepath.Join(newCache, "Python", pyVersion, "x64", "lib", "python3.7", "lib-dynload", "_sqlite3*.so"))
	if len(removed) == 0 {
		t.Fatalf("no _sqlite3*.so in %s: the test would prove nothing", py)
	}
	for _, f := range removed {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// These builds never had gdbm (no headers where they were built).
	gdbm := write("gdbm.yaml", "changes:\n  - remove: runtime/python@*/module/_*dbm\n    reason: these builds are made without gdbm\n")

	receiver := newAlertReceiver(t)
	r0 := make([]string, 12)
	for i := range r0 {
		r0[i] = fmt.Sprintf("canary-org-%02d", i)
	}
	cfg := write("imagegate.yaml", fmt.Sprintf(`
rings:
  - {name: canary, orgs: [%s], controlPercent: 25, bakeTime: 30s}
  - {name: early, percent: 30, bakeTime: 30s}
  - {name: everyone, percent: 100}
controller: {interval: 200ms, leaseTTL: 2s}
analysis: {alpha: 0.001, minOrgs: 3, action: rollback}
alerts:
  - {url: %s, format: json}
`, strings.Join(r0, ", "), receiver.URL))
	env := []string{"IMAGEGATE_ADMIN_TOKEN=" + incidentAdmin}
	s := startServer(t, env, "--db", filepath.Join(dir, "imagegate.db"), "--config", cfg)
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := helperCommand(t, args...)
		cmd.Env = append(cmd.Env, "IMAGEGATE_SERVER="+s.url, "IMAGEGATE_TOKEN="+incidentAdmin)
		out, err := cmd.Output()
		code := 0
		if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			var stderr []byte
			if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
				stderr = exit.Stderr
			}
			t.Fatalf("imagegate %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out, stderr)
		}
		return string(out)
	}

	// Scan both, gate both; the second fails on sqlite3 and is forced.
	oldSnap, newSnap := filepath.Join(dir, "old.json"), filepath.Join(dir, "new.json")
	cli(0, "scan", "dir:"+oldCache, "--exec", "none", "--out", oldSnap)
	cli(0, "scan", "dir:"+newCache, "--exec", "none", "--out", newSnap)
	oldCheck, newCheck := filepath.Join(dir, "old-check.json"), filepath.Join(dir, "new-check.json")
	cli(0, "check", oldSnap, "--changes", gdbm, "-o", "json", "--out", oldCheck)
	cli(1, "check", newSnap, "--baseline", oldSnap, "--changes", gdbm, "-o", "json", "--out", newCheck)
	if rep := readFile(t, newCheck); !strings.Contains(rep, "runtime/python@3.7/module/sqlite3") {
		t.Fatalf("the check report of the new version does not name sqlite3:\n%s", rep)
	}
	const label = "ubuntu-22.04"
	cli(0, "image", "push", label, "v1", "--snapshot", oldSnap, "--check-report", oldCheck)
	cli(0, "rollout", "start", label, "v1")
	cli(0, "image", "push", label, "v2", "--snapshot", newSnap, "--check-report", newCheck)
	cli(1, "rollout", "start", label, "v2")

	// The fleet: ring 0's named orgs (a control share of them stays on
	// v1) and the rest, which stays on v1 until later rings.
	orgs := append([]string(nil), r0...)
	for i := range 28 {
		orgs = append(orgs, fmt.Sprintf("fleet-org-%02d", i))
	}
	canary := rollout.Ring{Name: "canary", Orgs: r0, ControlPercent: 25}
	control := 0
	for _, org := range r0 {
		if rollout.InControl(canary, org) {
			control++
		}
	}
	if control == 0 || len(r0)-control < 6 {
		t.Fatalf("%d of ring 0's %d orgs are in its control share: want some, and at least 6 on the new version", control, len(r0))
	}

	ctx := context.Background()
	c, err := apiclient.New(s.url, incidentAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	runner := &runner{c: c, label: label, py: map[string]string{
		"v1": filepath.Join(oldCache, "Python", pyVersion, "x64", "bin", "python3.7"),
		"v2": filepath.Join(newCache, "Python", pyVersion, "x64", "bin", "python3.7"),
	}, outputs: map[string]string{}, background: map[string]int{}}

	// Last week on v1: the same pipelines with the same background
	// failures, as a new installation backfills them. A signature these
	// pipelines produced then is no evidence against v2.
	var history []rollout.JobEvent
	now := time.Now()
	for day := range 3 {
		for round := range 3 {
			at := now.Add(-time.Duration(day+1)*24*time.Hour + time.Duration(round)*time.Hour)
			for _, org := range orgs {
				for p := range pipelinesPerOrg {
					history = append(history, runner.job(t, org, p, "v1", fmt.Sprintf("h%d-%d", day, round), at))
				}
			}
		}
	}
	runner.post(ctx, t, history)

	started := cli(0, "rollout", "start", label, "v2", "--force", "--reason", "sqlite3 is leaving the 3.7 build (test)", "-o", "json")
	var ro rollout.Rollout
	if err := json.Unmarshal([]byte(started), &ro); err != nil {
		t.Fatalf("rollout start -o json: %v\n%s", err, started)
	}
	if !ro.Forced {
		t.Fatalf("rollout of v2 is not marked forced: %+v", ro)
	}

	// Runners: every pipeline of every org runs once a round, on the
	// version resolve gives its org, until the controller acts.
	var got rollout.Rollout
	deadline := time.Now().Add(40 * time.Second)
	for round := 0; ; round++ {
		var batch []rollout.JobEvent
		for _, org := range orgs {
			res, err := c.Resolve(ctx, org, label, "")
			if err != nil {
				t.Fatal(err)
			}
			for p := range pipelinesPerOrg {
				for run := range 2 { // a push and a pull request
					batch = append(batch, runner.job(t, org, p, res.Version, fmt.Sprintf("r%d-%d", round, run), time.Now()))
				}
			}
		}
		runner.post(ctx, t, batch)
		got, err = c.Rollout(ctx, ro.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != rollout.StateBaking && got.State != rollout.StatePending {
			t.Logf("after %d rounds (%d jobs on the new version): rollout %s in ring %d: %s", round+1, runner.newJobs, got.State, got.Ring, got.Reason)
			break
		}
		if got.Ring != 0 {
			t.Fatalf("rollout left ring 0 for ring %d without a regression found", got.Ring)
		}
		if time.Now().After(deadline) {
			a, _ := c.Analysis(ctx, ro.ID)
			aj, _ := json.MarshalIndent(a, "", "  ")
			t.Fatalf("rollout still baking in ring %d after %d rounds; analysis:\n%s", got.Ring, round+1, aj)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got.State != rollout.StateRolledBack || got.Ring != 0 {
		t.Fatalf("rollout is %s in ring %d (%s); want rolled-back in ring 0", got.State, got.Ring, got.Reason)
	}
	for _, org := range orgs {
		res, err := c.Resolve(ctx, org, label, "")
		if err != nil || res.Version != "v1" {
			t.Errorf("resolve %s after the rollback: %+v, %v; want v1", org, res, err)
		}
	}

	// The analysis names the sqlite3 signature, and only it: the
	// background failures are on both versions.
	a, err := c.Analysis(ctx, ro.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Rings) == 0 {
		t.Fatal("analysis has no ring")
	}
	d := a.Rings[0].Decision
	regs := d.Regressions()
	if d.Outcome != "fail" || len(regs) != 1 || !strings.Contains(regs[0].Template, "_sqlite3") {
		aj, _ := json.MarshalIndent(a.Rings[0], "", "  ")
		t.Fatalf("ring 0's decision: %s, %d regressions; want fail on the _sqlite3 signature alone:\n%s", d.Outcome, len(regs), aj)
	}
	both := 0
	for _, sr := range d.Signatures {
		if sr.ID != regs[0].ID && sr.New.Jobs > 0 && sr.Old.Jobs > 0 {
			both++
		}
	}
	if both == 0 || runner.background["v1"] == 0 || runner.background["v2"] == 0 {
		t.Fatalf("background failures %v, %d signatures seen on both sides in ring 0: the test needs them on both versions", runner.background, both)
	}
	t.Logf("ring 0: %s (%d live signatures, %d of them on both sides, new side %d pipelines, old %d)", d.Why, len(d.Signatures), both, a.Rings[0].New.Pipelines, a.Rings[0].Old.Pipelines)

	// The audit log keeps the decision: the template, examples, the
	// counts on each side, the statistic and the probable cause.
	audit, err := c.Audit(ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + ro.ID}, rollout.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var decided *rollout.DecisionSummary
	for _, e := range audit.Items {
		var det struct {
			Health rollout.HealthResult `json:"health"`
		}
		if e.Action == "rollout.rollback" && json.Unmarshal(e.Details, &det) == nil && det.Health.Decision != nil {
			decided = det.Health.Decision
			break
		}
	}
	switch {
	case decided == nil:
		t.Errorf("no rollback audit entry of rollout %s holds the decision: %+v", ro.ID, audit.Items)
	case decided.Signature == nil || !strings.Contains(decided.Signature.Template, "_sqlite3") || len(decided.Signature.Examples) == 0 ||
		!strings.Contains(decided.Signature.Examples[0], "ModuleNotFoundError: No module named '_sqlite3'") ||
		decided.Signature.New.Orgs < 3 || decided.Signature.Old.Pipelines != 0 || decided.Statistic < decided.Threshold ||
		len(decided.ProbableCause) == 0 || decided.ProbableCause[0].Change.ID != "runtime/python@3.7/module/sqlite3":
		dj, _ := json.MarshalIndent(decided, "", "  ")
		t.Errorf("the audited decision does not explain the _sqlite3 regression:\n%s", dj)
	}

	// The same, as people read it.
	if out := cli(0, "rollout", "analysis", ro.ID); !strings.Contains(out, "_sqlite3") || !strings.Contains(out, "runtime/python@3.7/module/sqlite3") {
		t.Errorf("imagegate rollout analysis does not name _sqlite3 and its cause:\n%s", out)
	}

	// The alert arrives, naming the signature and its probable cause.
	alertDeadline := time.Now().Add(15 * time.Second)
	var p alert.Payload
	var body string
	for {
		if body = receiver.find(ro.ID); body != "" {
			break
		}
		if time.Now().After(alertDeadline) {
			t.Fatalf("no alert about rollout %s arrived; received: %q", ro.ID, receiver.all())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("alert body: %v\n%s", err, body)
	}
	if p.Label != label || p.Version != "v2" || p.Ring != 0 || !strings.Contains(p.Signature.Template, "_sqlite3") ||
		len(p.ProbableCause) == 0 || p.ProbableCause[0].Identity != "runtime/python@3.7/module/sqlite3" ||
		!strings.HasSuffix(p.Link, "/api/v1/rollouts/"+ro.ID+"/analysis") {
		t.Fatalf("alert does not name v2 in ring 0, the _sqlite3 signature and runtime/python@3.7/module/sqlite3 first:\n%s", body)
	}
	for _, want := range []string{"_sqlite3", "runtime/python@3.7/module/sqlite3"} {
		if !strings.Contains(body, want) {
			t.Errorf("alert does not mention %s:\n%s", want, body)
		}
	}
	t.Logf("alert %s (%s): %s; %d jobs posted in %s", p.ID, p.Kind, p.Summary, runner.jobs, time.Since(began).Round(time.Millisecond))
}

// pipelinesPerOrg: each org has this many pipelines; the first two use
// sqlite3.
const pipelinesPerOrg = 4

// runner plays the CI runners: it runs the interpreter of the resolved
// version's tool cache (once per version and workload, the output is the
// same every time) and reports the outcome.
type runner struct {
	c             *apiclient.Client
	label         string
	py            map[string]string // version -> python3.7 of its tool cache
	outputs       map[string]string // version/workload -> error text, "" when it succeeded
	jobs, newJobs int
	background    map[string]int // version -> background failures
}

// workloads: what a pipeline's step runs.
var workloads = []string{
	"import sqlite3; sqlite3.connect(':memory:').execute('select 1')",
	"import json, hashlib; print(json.dumps(hashlib.sha256(b'x').hexdigest()))",
}

func (r *runner) run(t *testing.T, version string, workload int) string {
	t.Helper()
	key := fmt.Sprintf("%s/%d", version, workload)
	if out, ok := r.outputs[key]; ok {
		return out
	}
	exe, ok := r.py[version]
	if !ok {
		t.Fatalf("resolve gave version %q, which no tool cache has", version)
	}
	cmd := exec.Command(exe, "-c", workloads[workload])
	cmd.Env = []string{"PATH=" + filepath.Dir(exe), "LANG=C.UTF-8"}
	out, err := cmd.CombinedOutput()
	text := ""
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
		text = string(out) + fmt.Sprintf("Error: Process completed with exit code %d.\n", exit.ExitCode())
	} else if err != nil {
		t.Fatal(err)
	}
	r.outputs[key] = text
	return text
}

// job runs pipeline p of org once on version and returns its event.
// Background failures (flaky tests, registry timeouts, ...) hit about one
// job in eight on either version, with variable parts in their text.
func (r *runner) job(t *testing.T, org string, p int, version, run string, at time.Time) rollout.JobEvent {
	t.Helper()
	pipeline := fmt.Sprintf("%s/app%d/.github/workflows/ci.yml", org, p)
	e := rollout.JobEvent{JobID: fmt.Sprintf("%s/%s/%s", pipeline, version, run), Org: org, Label: r.label, Version: version,
		Pipeline: pipeline, RunID: run, Outcome: rollout.OutcomeSucceeded, StartedAt: at, DurationMs: 30_000}
	workload := 1
	if p < 2 {
		workload = 0
	}
	if text := r.run(t, version, workload); text != "" {
		e.Outcome, e.ErrorText = rollout.OutcomeFailed, "Run python -c ...\n"+text
	} else if h := hash(e.JobID); h%8 == 0 {
		e.Outcome, e.ErrorText = rollout.OutcomeFailed, background(h)
		r.background[version]++
	}
	r.jobs++
	if version == "v2" {
		r.newJobs++
	}
	return e
}

func (r *runner) post(ctx context.Context, t *testing.T, events []rollout.JobEvent) {
	t.Helper()
	for len(events) > 0 {
		n := min(len(events), 2000)
		if _, err := r.c.PostEvents(ctx, events[:n]); err != nil {
			t.Fatalf("post %d events: %v", n, err)
		}
		events = events[n:]
	}
}

// background returns one of many unrelated failures, with the variable
// parts a real log has.
func background(h uint32) string {
	n := h / 8
	texts := []string{
		"npm ERR! code ETIMEDOUT\nnpm ERR! network request to https://registry.npmjs.org/left-pad/-/left-pad-%d.tgz failed, reason: connect ETIMEDOUT 104.16.%d.35:443",
		"fatal: unable to access 'https://github.com/org/repo%d.git/': Could not resolve host: github.com",
		"Traceback (most recent call last):\n  File \"/home/runner/work/app/tests/test_api.py\", line %d, in test_timeout\n    r = requests.get(url, timeout=5)\nrequests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='api.example.com', port=443): Max retries exceeded with url: /v1/items/%d",
		"FAIL: test_checkout_flow (tests.test_cart.CartTest.test_checkout_flow) [%d]\nAssertionError: 402 != 200",
		"Error: The operation was canceled after %d minutes.",
		"E   AssertionError: assert %d == 0\n=========================== 1 failed, 213 passed in 41.%02ds ===========================",
		"Traceback (most recent call last):\n  File \"setup.py\", line %d, in <module>\nModuleNotFoundError: No module named 'requests'",
		"ERROR: failed to solve: failed to fetch oauth token: unexpected status: 429 Too Many Requests (attempt %d)",
		"go: downloading golang.org/x/net v0.%d.0\nError: context deadline exceeded",
		"docker: Error response from daemon: toomanyrequests: You have reached your pull rate limit (%d).",
		"ERROR: Could not find a version that satisfies the requirement torch==2.%d.0",
		"error: linker `cc` not found\nError: Process completed with exit code %d.",
		"Killed\nError: Process completed with exit code 137 after %ds.",
		"java.lang.OutOfMemoryError: Java heap space at build step %d",
		"Error: ENOSPC: no space left on device, write (fd %d)",
	}
	tmpl := texts[n%uint32(len(texts))]
	if strings.Count(tmpl, "%") == 2 {
		return fmt.Sprintf(tmpl, n%97, n%251)
	}
	return fmt.Sprintf(tmpl, n%97)
}

// hash is FNV-1a: a stable pseudo-random number per job.
func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// alertReceiver is the webhook the server alerts: it keeps every body.
type alertReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	r := &alertReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

// find returns the first body about rollout id, "" when none came yet.
func (r *alertReceiver) find(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bodies {
		var p alert.Payload
		if json.Unmarshal([]byte(b), &p) == nil && p.RolloutID == id {
			return b
		}
	}
	return ""
}

func (r *alertReceiver) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// linkTree copies a directory tree with hard links for files (a 200 MB
// Python build in milliseconds; deleting a file of the copy leaves the
// original alone), copying a file when it lies on another file system.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		}
		err = os.Link(p, to)
		if errors.Is(err, syscall.EXDEV) {
			err = copyFile(p, to)
		}
		return err
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
