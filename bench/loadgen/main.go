// Command loadgen measures imagegate serve from a separate process on
// loopback: resolve requests per second with p50/p99 latency over N
// concurrent keep-alive connections, and job-event ingest in batches.
// It is bounded: it stops after -duration or -requests, whichever comes
// first, and refuses servers that are not on loopback.
//
//	loadgen -server http://127.0.0.1:8080 -token ADMIN -seed
//
// With -seed it first creates what it measures through the API (a ring
// plan, two versions of -label, a rollout in progress, a runner token)
// and then uses the runner token.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

type options struct {
	server, token, label string
	seed                 bool
	orgs                 int
	conns                int
	duration             time.Duration
	maxRequests          int64
	runs                 bool
	ingestWorkers, batch int
	ingestDuration       time.Duration
	maxEvents            int64
	pipelines            int
	failRate             float64
	oldVersion, version  string // seeded: what the fleet runs and what ring 0 gets
	asJSON               bool
}

// Result is what loadgen prints with -json.
type Result struct {
	Resolve *ResolveResult `json:"resolve,omitempty"`
	Ingest  *IngestResult  `json:"ingest,omitempty"`
}

// ResolveResult summarises the resolve phase.
type ResolveResult struct {
	Connections int     `json:"connections"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"perSecond"`
	P50ms       float64 `json:"p50ms"`
	P99ms       float64 `json:"p99ms"`
	MaxMs       float64 `json:"maxMs"`
}

// IngestResult summarises the ingest phase.
type IngestResult struct {
	Workers   int     `json:"workers"`
	Batch     int     `json:"batch"`
	Events    int64   `json:"events"`
	Errors    int64   `json:"errors"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"perSecond"`
	P50ms     float64 `json:"batchP50ms"`
	P99ms     float64 `json:"batchP99ms"`
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "http://127.0.0.1:8080", "imagegate server URL (loopback only)")
	flag.StringVar(&o.token, "token", os.Getenv("IMAGEGATE_TOKEN"), "bearer token (admin with -seed)")
	flag.StringVar(&o.label, "label", "loadgen-image", "image label to resolve")
	flag.BoolVar(&o.seed, "seed", false, "create rings, versions, a rollout and a runner token first")
	flag.IntVar(&o.orgs, "orgs", 10000, "distinct organisations to resolve for")
	flag.IntVar(&o.conns, "connections", 16, "concurrent keep-alive connections for resolve")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "resolve phase length (0 skips it)")
	flag.Int64Var(&o.maxRequests, "requests", 2_000_000, "stop the resolve phase after this many requests")
	flag.BoolVar(&o.runs, "run-ids", false, "send a workflow run id with every resolve (run affinity path)")
	flag.IntVar(&o.ingestWorkers, "ingest-workers", 4, "concurrent event posters")
	flag.IntVar(&o.batch, "batch", 500, "events per POST /api/v1/events")
	flag.DurationVar(&o.ingestDuration, "ingest-duration", 10*time.Second, "ingest phase length (0 skips it)")
	flag.Int64Var(&o.maxEvents, "events", 5_000_000, "stop the ingest phase after this many events")
	flag.IntVar(&o.pipelines, "pipelines", 5000, "distinct pipelines events come from")
	flag.Float64Var(&o.failRate, "fail-rate", 0.08, "share of failed jobs (with an error text from ~200 templates)")
	flag.StringVar(&o.oldVersion, "old-version", "v1", "version most orgs run (set by -seed)")
	flag.StringVar(&o.version, "new-version", "v2", "version ring 0 (org-0, org-1) runs (set by -seed)")
	flag.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	u, err := url.Parse(o.server)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-server %q: want http://127.0.0.1:PORT", o.server)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-server %s is not on loopback: loadgen only loads this machine", o.server)
	}
	if o.seed {
		tok, old, cur, err := seed(ctx, o)
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		o.token, o.oldVersion, o.version = tok, old, cur
	}
	var res Result
	if o.duration > 0 {
		r, err := resolveLoad(u.Host, o)
		if err != nil {
			return err
		}
		res.Resolve = r
		if !o.asJSON {
			fmt.Fprintf(stdout, "resolve: %d connections, %d requests in %.1fs: %.0f req/s, p50 %.2f ms, p99 %.2f ms, max %.1f ms, %d errors\n",
				r.Connections, r.Requests, r.Seconds, r.PerSecond, r.P50ms, r.P99ms, r.MaxMs, r.Errors)
		}
	}
	if o.ingestDuration > 0 {
		r, err := ingestLoad(ctx, o)
		if err != nil {
			return err
		}
		res.Ingest = r
		if !o.asJSON {
			fmt.Fprintf(stdout, "ingest: %d workers, batches of %d, %d events in %.1fs: %.0f events/s, batch p50 %.1f ms, p99 %.1f ms, %d errors\n",
				r.Workers, r.Batch, r.Events, r.Seconds, r.PerSecond, r.P50ms, r.P99ms, r.Errors)
		}
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return nil
}

// seed creates a label mid-rollout and a runner token; it returns the
// token and the old and new versions.
func seed(ctx context.Context, o options) (string, string, string, error) {
	c, err := apiclient.New(o.server, o.token, nil)
	if err != nil {
		return "", "", "", err
	}
	rings := []rollout.Ring{
		{Name: "canary", Orgs: []string{"org-0", "org-1"}, BakeTime: 24 * time.Hour},
		{Name: "early", Percent: 30, BakeTime: 24 * time.Hour, ControlPercent: 10},
		{Name: "everyone", Percent: 100},
	}
	suffix := randHex(3)
	old, cur := "v1-"+suffix, "v2-"+suffix
	for i, v := range []string{old, cur} {
		if _, err := c.PushVersion(ctx, o.label, api.PushVersionRequest{Version: v, CheckReport: []byte(`{"verdict":"pass"}`)}); err != nil {
			return "", "", "", err
		}
		// A label's plan needs a version of it first.
		if i == 0 {
			if err := c.SetRings(ctx, o.label, rings); err != nil {
				return "", "", "", err
			}
		}
		if _, err := c.StartRollout(ctx, api.StartRolloutRequest{Label: o.label, Version: v}); err != nil {
			return "", "", "", err
		}
	}
	t, err := c.CreateToken(ctx, "loadgen-runner-"+suffix, rollout.RoleRunner)
	if err != nil {
		return "", "", "", err
	}
	// Let every replica's routing table see the rollout.
	rc, _ := apiclient.New(o.server, t.Token, nil)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if r, err := rc.Resolve(ctx, "org-0", o.label, ""); err == nil && r.Version == cur {
			break
		} else if time.Now().After(deadline) {
			return "", "", "", fmt.Errorf("the server does not resolve the seeded rollout: %+v, %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return t.Token, old, cur, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// resolveLoad drives GET /api/v1/resolve over raw keep-alive connections:
// a minimal HTTP/1.1 client, so the generator's own cost stays small next
// to the server's on a shared machine.
func resolveLoad(host string, o options) (*ResolveResult, error) {
	var total, errs atomic.Int64
	deadline := time.Now().Add(o.duration)
	lat := make([][]time.Duration, o.conns)
	var wg sync.WaitGroup
	start := time.Now()
	var firstErr atomic.Value
	runPrefix := randHex(4)
	for w := range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", host)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			defer conn.Close()
			br := bufio.NewReaderSize(conn, 16<<10)
			ls := make([]time.Duration, 0, 1<<16)
			var req []byte
			for i := 0; ; i++ {
				if total.Add(1) > o.maxRequests || (i%64 == 0 && time.Now().After(deadline)) {
					break
				}
				org := (w*7919 + i*31) % o.orgs
				req = req[:0]
				req = append(req, "GET /api/v1/resolve?org=org-"...)
				req = strconv.AppendInt(req, int64(org), 10)
				req = append(req, "&label="...)
				req = append(req, url.QueryEscape(o.label)...)
				if o.runs {
					req = append(req, "&run="...)
					req = append(req, runPrefix...)
					req = strconv.AppendInt(req, int64(w*1_000_000+i/4), 10) // 4 jobs per run
				}
				req = append(req, " HTTP/1.1\r\nHost: "...)
				req = append(req, host...)
				req = append(req, "\r\nAuthorization: Bearer "...)
				req = append(req, o.token...)
				req = append(req, "\r\n\r\n"...)
				t0 := time.Now()
				if _, err := conn.Write(req); err != nil {
					firstErr.CompareAndSwap(nil, err)
					errs.Add(1)
					break
				}
				status, err := readResponse(br)
				ls = append(ls, time.Since(t0))
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					errs.Add(1)
					break
				}
				if status != 200 {
					errs.Add(1)
				}
			}
			lat[w] = ls
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("resolve: no request answered: %v", firstErr.Load())
	}
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "loadgen: resolve connection error: %v\n", e)
	}
	slices.Sort(all)
	return &ResolveResult{
		Connections: o.conns, Requests: int64(len(all)), Errors: errs.Load(), Seconds: elapsed.Seconds(),
		PerSecond: float64(len(all)) / elapsed.Seconds(),
		P50ms:     ms(all[len(all)/2]), P99ms: ms(all[len(all)*99/100]), MaxMs: ms(all[len(all)-1]),
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// readResponse reads one HTTP/1.1 response with a Content-Length body
// (what the resolve handler sends) and returns its status.
func readResponse(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			length, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	_, err = br.Discard(length)
	return status, err
}

// ingestLoad posts batches of job events with unique ids through the
// regular client; each batch is acknowledged only once durable.
func ingestLoad(ctx context.Context, o options) (*IngestResult, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.ingestWorkers}}
	c, err := apiclient.New(o.server, o.token, hc)
	if err != nil {
		return nil, err
	}
	var total, errs atomic.Int64
	deadline := time.Now().Add(o.ingestDuration)
	prefix := randHex(4)
	lat := make([][]time.Duration, o.ingestWorkers)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for w := range o.ingestWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs := make([]rollout.JobEvent, o.batch)
			rng := mrand.New(mrand.NewPCG(uint64(w), 7))
			for b := 0; time.Now().Before(deadline) && total.Load() < o.maxEvents; b++ {
				now := time.Now().UTC()
				for i := range evs {
					evs[i] = pipelineEvent(rng, o, fmt.Sprintf("%s-%d-%d-%d", prefix, w, b, i), now)
				}
				t0 := time.Now()
				resp, err := c.PostEvents(ctx, evs)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					errs.Add(1)
					continue
				}
				total.Add(int64(resp.New))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if total.Load() == 0 {
		return nil, fmt.Errorf("ingest: no event stored: %v", firstErr.Load())
	}
	slices.Sort(all)
	return &IngestResult{
		Workers: o.ingestWorkers, Batch: o.batch, Events: total.Load(), Errors: errs.Load(), Seconds: elapsed.Seconds(),
		PerSecond: float64(total.Load()) / elapsed.Seconds(), P50ms: ms(all[len(all)/2]), P99ms: ms(all[len(all)*99/100]),
	}, nil
}

// pipelineEvent is one job of a pipeline drawn from -pipelines (its org
// follows from it, so a pipeline always belongs to one org), on the version
// the org's ring runs; a failure carries an error text like a runner's.
func pipelineEvent(rng *mrand.Rand, o options, id string, now time.Time) rollout.JobEvent {
	p := rng.IntN(o.pipelines)
	org := p % o.orgs
	e := rollout.JobEvent{JobID: id, Org: fmt.Sprintf("org-%d", org), Label: o.label, Version: o.oldVersion,
		Pipeline: fmt.Sprintf("org-%d/repo-%d/.github/workflows/ci.yml", org, p), RunID: fmt.Sprintf("%s-run", id),
		Outcome: rollout.OutcomeSucceeded, StartedAt: now.Add(-time.Duration(rng.IntN(60_000)) * time.Millisecond),
		DurationMs: int64(10_000 + rng.IntN(600_000))}
	if org < 2 { // ring 0 of the seeded plan
		e.Version = o.version
	}
	if rng.Float64() < o.failRate {
		e.Outcome, e.ErrorText = rollout.OutcomeFailed, errorText(rng)
	}
	return e
}

// errorKinds are the shapes of error blocks CI logs end in; each takes a
// subject from errorSubjects, which makes ~200 distinct templates, and
// variable parts (numbers, paths, hashes, durations) that a miner masks.
var errorKinds = []string{
	"Traceback (most recent call last):\n  File \"/home/runner/work/app/%[2]s.py\", line %[3]d, in <module>\n    import %[1]s\nModuleNotFoundError: No module named '%[1]s'",
	"npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry.npmjs.org/%[1]s/-/%[1]s-%[3]d.0.%[4]d.tgz\nnpm ERR! 404 '%[1]s@^%[3]d.0.0' is not in this registry.",
	"--- FAIL: Test%[1]s (%[3]d.%[4]ds)\n    %[2]s_test.go:%[3]d: got %[4]d, want %[3]d\nFAIL\ngithub.com/acme/%[2]s\t%[3]d.%[4]ds",
	"Error: Process completed with exit code %[3]d.",
	"fatal: unable to access 'https://github.com/acme/%[1]s.git/': Could not resolve host: github.com",
	"error[E0432]: unresolved import `%[1]s`\n --> src/%[2]s.rs:%[3]d:%[4]d",
	"ERROR: Could not find a version that satisfies the requirement %[1]s==%[3]d.%[4]d (from versions: none)",
	"java.lang.OutOfMemoryError: Java heap space\n\tat com.acme.%[1]s.run(%[2]s.java:%[3]d)",
	"E: Unable to locate package lib%[1]s-dev",
	"/usr/bin/ld: cannot find -l%[1]s: No such file or directory\ncollect2: error: ld returned 1 exit status",
	"ImportError: lib%[1]s.so.%[3]d: cannot open shared object file: No such file or directory",
	"docker: Error response from daemon: pull access denied for acme/%[1]s, repository does not exist (sha256:%[5]s)",
	"FAILED tests/test_%[1]s.py::test_%[2]s - AssertionError: assert %[3]d == %[4]d",
	"Error: Cannot find module '%[1]s'\nRequire stack:\n- /home/runner/work/app/%[2]s.js",
	"TimeoutError: job %[5]s exceeded %[3]d minutes",
	"OSError: [Errno 28] No space left on device: '/tmp/%[2]s-%[5]s'",
	"curl: (28) Operation timed out after %[3]d milliseconds with 0 bytes received",
	"ssl.SSLCertVerificationError: certificate verify failed: unable to get local issuer certificate (_ssl.c:%[3]d)",
	"make: *** [Makefile:%[3]d: %[1]s] Error %[4]d",
	"panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x%[4]x pc=0x%[3]x]\ngoroutine 1 [running]:\nmain.%[1]s()",
}

var errorSubjects = []string{"sqlite3", "requests", "numpy", "lxml", "ssl", "yaml", "openssl", "zlib", "ffi", "curl"}

func errorText(rng *mrand.Rand) string {
	kind := errorKinds[rng.IntN(len(errorKinds))]
	subj := errorSubjects[rng.IntN(len(errorSubjects))]
	var b strings.Builder
	for i := range 3 + rng.IntN(6) {
		fmt.Fprintf(&b, "2026-03-02T09:%02d:%02d.%03dZ step %d: building %s (%d/%d)\n", rng.IntN(60), rng.IntN(60), rng.IntN(1000), i, subj, i, 9)
	}
	fmt.Fprintf(&b, kind, subj, "mod_"+randHex(2), 1+rng.IntN(500), rng.IntN(100), randHex(8))
	b.WriteString("\n##[error]Process completed with exit code 1.\n")
	return b.String()
}
