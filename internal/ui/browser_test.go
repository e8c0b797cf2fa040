package ui_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/testenv"
)

// browser is one headless Chromium (its own cookies) logged in as a token.
type browser struct {
	t    *testing.T
	e    *env
	ctx  context.Context
	mu   sync.Mutex
	csp  []string // Content-Security-Policy violations the console reported
	shot string   // screenshot folder
}

func screenshotDir(t *testing.T) string {
	dir := os.Getenv("IMAGEGATE_UI_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "imagegate-ui-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (e *env) browser(t *testing.T, exec string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exec), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, e: e, ctx: ctx, shot: screenshotDir(t)}
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
		return err
	}))
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry != nil && strings.Contains(ev.Entry.Text, "Content Security Policy") {
				b.mu.Lock()
				b.csp = append(b.csp, ev.Entry.Text)
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// waitFor evaluates a JavaScript predicate until it holds; a page that
// navigates meanwhile (a form posted) is asked again.
func (b *browser) waitFor(what, js string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, js, last, b.text())
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.e.url+path), chromedp.WaitReady(chromedp.CSS("body")))
}

func (b *browser) text() string { return eval[string](b, `document.body.innerText`) }

func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	file := filepath.Join(b.shot, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", file)
	b.accessible(name)
}

// axeSource is axe-core, vendored (testdata/README.md).
var axeSource = sync.OnceValues(func() ([]byte, error) { return os.ReadFile(filepath.Join("testdata", "axe.min.js")) })

// accessible runs axe-core's WCAG 2 A and AA rules on the page and fails
// the test on every serious or critical violation.
func (b *browser) accessible(page string) {
	b.t.Helper()
	src, err := axeSource()
	if err != nil {
		b.t.Fatal(err)
	}
	eval[bool](b, string(src)+";true")
	found := eval[[]string](b, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa"]}}).then(r =>
		r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
		  .map(v => v.id + " (" + v.impact + "): " + v.help + " — " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")))`)
	for _, v := range found {
		b.t.Errorf("%s: accessibility: %s", page, v)
	}
}

func (b *browser) login(token string) {
	b.t.Helper()
	b.open("/ui/login")
	b.do(chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Submit(chromedp.ID("token")))
	b.waitFor("the images page", `document.querySelector("h1") && document.querySelector("h1").textContent === "Images"`, 10*time.Second)
}

// TestBrowser drives the dashboard in a real headless Chromium: an admin
// watches a rollout bake in ring 0 over Server-Sent Events, rolls it back
// through the confirmation and finds the audit entry; an org user sees
// only its own pins and no action; a forged POST is refused. Screenshots
// of each page go to $IMAGEGATE_UI_SCREENSHOTS (default
// $TMPDIR/imagegate-ui-screenshots).
func TestBrowser(t *testing.T) {
	exec := testenv.RequireChromium(t)
	e := newEnv(t)
	id := e.rollout.ID
	admin := e.browser(t, exec)
	admin.login(e.admin)

	// Ring 0 has baked 10 of its 60 minutes.
	progress := `document.querySelector("tr.current progress")`
	if got := eval[int](admin, progress+`.value`); got != 16 {
		t.Errorf("bake progress of ring 0 = %d%%, want 16%%", got)
	}
	admin.screenshot("01-images-before")
	// The page stays; only the stream moves it.
	eval[bool](admin, `window.imagegateMarker = "no reload"; true`)
	e.clk.Advance(20 * time.Minute)
	if _, err := e.svc.Resolve(context.Background(), "org-a", "ubuntu-22.04", "run-live"); err != nil {
		t.Fatal(err)
	}
	admin.waitFor("the bake progress to advance over SSE",
		progress+` && `+progress+`.value === 50 && window.imagegateMarker === "no reload" && document.querySelector('tr.current .count[data-version="v2"]') !== null`, 15*time.Second)
	if got := eval[string](admin, `document.querySelector('tr.current .count[data-version="v2"]').textContent`); got != "1" {
		t.Errorf("served count of v2 in ring 0 after one resolve = %q, want 1", got)
	}
	admin.screenshot("02-images-after-sse")

	// Two more hours of jobs: ring 0's trend has three points.
	e.laterJobs(t)
	admin.open("/ui/rollouts/" + id)
	if txt := admin.text(); !strings.Contains(txt, "rollout.start") || !strings.Contains(txt, "Ring health") {
		t.Errorf("rollout page lacks the timeline or the ring health:\n%s", txt)
	}
	if n := eval[int](admin, `document.querySelectorAll("svg.chart").length`); n < 3 {
		t.Errorf("rollout page draws %d charts, want the failure rates, their trend and the statistic at least", n)
	}
	// The trend is drawn (both lines, a marker per point and side) and
	// its table is there for who cannot see it.
	if n := eval[int](admin, `document.querySelectorAll("svg.trend path.series.new, svg.trend path.series.old").length`); n != 2 {
		t.Errorf("trend chart draws %d lines, want 2", n)
	}
	if n := eval[int](admin, `document.querySelectorAll("svg.trend circle.marker.new title, svg.trend rect.marker.old title").length`); n != 6 {
		t.Errorf("trend chart titles %d markers, want 6 (3 hours, 2 sides)", n)
	}
	if w := eval[float64](admin, `document.querySelector("svg.trend").getBoundingClientRect().width`); w < 300 {
		t.Errorf("trend chart is %.0f px wide", w)
	}
	if n := eval[int](admin, `document.querySelectorAll("details table.trend tbody tr").length`); n != 3 {
		t.Errorf("trend table has %d rows, want 3", n)
	}
	admin.screenshot("03-rollout")

	// A forged POST (no CSRF value) is refused and changes nothing.
	status := eval[int](admin, `fetch("/ui/rollouts/`+id+`/act", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "action=pause&reason=forged"}).then(r => r.status)`)
	if status != 403 {
		t.Errorf("forged POST answered %d, want 403", status)
	}
	if r, _ := e.svc.GetRollout(context.Background(), id); r.State != rollout.StateBaking {
		t.Fatalf("the forged POST moved the rollout to %s", r.State)
	}

	admin.do(chromedp.Click(chromedp.CSS("a.action-rollback")), chromedp.WaitVisible(chromedp.ID("reason")))
	admin.do(chromedp.SendKeys(chromedp.ID("reason"), "sqlite3 imports fail in ring 0"))
	admin.screenshot("04-confirm-rollback")
	admin.do(chromedp.Click(chromedp.CSS(`form[action$="/act"] button[type="submit"]`)))
	admin.waitFor("the rolled-back state", `document.querySelector(".state") && document.querySelector(".state").textContent === "rolled-back"`, 10*time.Second)
	if r, _ := e.svc.GetRollout(context.Background(), id); r.State != rollout.StateRolledBack || r.Reason != "sqlite3 imports fail in ring 0" {
		t.Errorf("after the confirmation the rollout is %s (%q)", r.State, r.Reason)
	}
	admin.screenshot("05-rollout-rolled-back")
	admin.open("/ui/audit?action=" + url.QueryEscape("rollout.rollback"))
	if txt := admin.text(); !strings.Contains(txt, "sqlite3 imports fail in ring 0") || !strings.Contains(txt, "rollout/"+id) {
		t.Errorf("audit page lacks the rollback:\n%s", txt)
	}
	admin.screenshot("06-audit")
	// org-a reports the failure it saw: the Signatures page matches it.
	if _, err := e.reports.Report(context.Background(), "token:org-a-support", rollout.Report{Org: "org-a", Label: "ubuntu-22.04", Version: "v2",
		JobID: "job-77", Text: sqliteTraceback}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ path, name, check string }{
		{"/ui/images/ubuntu-22.04/versions/v2", "07-version", ""},
		// Each signature's sparkline: bars with their hour and count.
		{"/ui/signatures?label=ubuntu-22.04&version=v2", "08-signatures", `document.querySelectorAll("svg.trend-spark rect.bar title").length > 0 &&
			[...document.querySelectorAll("svg.trend-spark rect.bar title")].some(t => t.textContent === "Dec 1 09:00 UTC: 12")`},
		{"/ui/pins", "09-pins-admin", ""},
		{"/ui/images/ubuntu-22.04", "10-image", ""},
		// An admin asks what org-b resolves: its pin, with the reason.
		{"/ui/?org=org-b", "13-images-resolves-admin", `document.querySelector("table.resolves") && document.querySelector("table.resolves").innerText.includes("org-b secret reason")`},
	} {
		admin.open(p.path)
		if p.check != "" && !eval[bool](admin, "Boolean("+p.check+")") {
			t.Errorf("%s: %s does not hold; page:\n%s", p.path, p.check, admin.text())
		}
		admin.screenshot(p.name)
	}

	org := e.browser(t, exec)
	org.login(e.orgA)
	org.screenshot("11-images-org")
	// org-a sees what it resolves now, and why (its pin; after the
	// rollback the default again), and nothing of org-b.
	if txt := org.text(); !strings.Contains(txt, "debian-12\td1 pinned\tpinned") || !strings.Contains(txt, "org-a waits for sqlite3") ||
		!strings.Contains(txt, "ubuntu-22.04\tv1\tdefault") || strings.Contains(txt, "org-b") {
		t.Errorf("org-a's images page must show its resolves and nothing of org-b:\n%s", txt)
	}
	org.open("/ui/?org=org-b")
	if txt := org.text(); !strings.Contains(txt, "403") || strings.Contains(txt, "org-b secret reason") {
		t.Errorf("org-a asking for org-b's resolves:\n%s", txt)
	}
	if n := eval[int](org, `document.querySelectorAll(".actions, a.button, form[action$='/act'], a[href*='/confirm']").length`); n != 0 {
		t.Errorf("org user's images page shows %d action controls", n)
	}
	org.open("/ui/pins")
	if txt := org.text(); !strings.Contains(txt, "org-a waits for sqlite3") || strings.Contains(txt, "org-b") {
		t.Errorf("org-a's pins page must show its pin and nothing of org-b:\n%s", txt)
	}
	org.screenshot("12-pins-org")
	org.open("/ui/rollouts/" + id)
	if n := eval[int](org, `document.querySelectorAll("a.button, form[action$='/act']").length`); n != 0 || !strings.Contains(org.text(), "403") {
		t.Errorf("org user opening a rollout: %d action controls, page:\n%s", n, org.text())
	}

	for _, b := range []*browser{admin, org} {
		b.mu.Lock()
		if len(b.csp) > 0 {
			t.Errorf("Content-Security-Policy violations: %q", b.csp)
		}
		b.mu.Unlock()
	}
}
