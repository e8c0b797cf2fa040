// Command faultload drives one or more imagegate serve replicas while a
// script breaks things underneath them (bench/fault-postgres.sh kills
// replicas and restarts PostgreSQL, bench/fault-sqlite-disk.sh fills the
// disk), and reports what the clients saw and what the store kept:
//
//   - resolve (half with a run id), job events (batches retried on the next replica until
//     acknowledged, like a runner's client) and user reports, each answer
//     counted by class: 2xx, 4xx, 503, other 5xx, connection error;
//   - /readyz of every replica four times a second;
//   - with -rollouts, one rollout after another through a three-ring plan
//     with short bake times, and at the end the audit log of each: every
//     controller decision must appear exactly once;
//   - with -pg or -sqlite, the events stored under this run's job ids,
//     which must equal the acknowledged ones (and SQLite's integrity check);
//   - with -faults FILE (lines "UNIX-MILLIS what"), per fault the failures
//     until the next one and how long until the last of them.
//
// It only loads servers on loopback, and stops after -duration.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

type options struct {
	servers   []string
	token     string
	label     string
	duration  time.Duration
	resolvers int
	pause     time.Duration
	ingesters int
	batch     int
	ingestGap time.Duration
	reporters int
	rollouts  bool
	bake      time.Duration
	faults    string
	pg        string
	sqlite    string
	asJSON    bool
}

func main() {
	var o options
	var servers string
	flag.StringVar(&servers, "servers", "http://127.0.0.1:8080", "comma-separated replica URLs (loopback only)")
	flag.StringVar(&o.token, "token", os.Getenv("IMAGEGATE_TOKEN"), "admin token")
	flag.StringVar(&o.label, "label", "faultload", "image label to use (its ring plan is replaced)")
	flag.DurationVar(&o.duration, "duration", time.Minute, "how long to load")
	flag.IntVar(&o.resolvers, "resolvers", 2, "concurrent resolve loops")
	flag.DurationVar(&o.pause, "resolve-pause", time.Millisecond, "pause between one loop's resolves (the machine is shared)")
	flag.IntVar(&o.ingesters, "ingesters", 2, "concurrent event posters")
	flag.IntVar(&o.batch, "batch", 200, "events per POST")
	flag.DurationVar(&o.ingestGap, "ingest-pause", 0, "pause between one poster's batches")
	flag.IntVar(&o.reporters, "reporters", 1, "concurrent report posters (about 5/s each)")
	flag.BoolVar(&o.rollouts, "rollouts", false, "drive rollouts one after another and check their audit log")
	flag.DurationVar(&o.bake, "bake", 2*time.Second, "bake time of each ring with -rollouts")
	flag.StringVar(&o.faults, "faults", "", "file of faults the script caused, read at the end")
	flag.StringVar(&o.pg, "pg", "", "PostgreSQL DSN of the replicas' schema: count stored events")
	flag.StringVar(&o.sqlite, "sqlite", "", "SQLite file of the replica: count stored events, check integrity")
	flag.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	flag.Parse()
	o.servers = strings.Split(servers, ",")
	res, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "faultload: %v\n", err)
		os.Exit(1)
	}
	if o.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		res.print(os.Stdout)
	}
	if !res.OK {
		os.Exit(2)
	}
}

// Result is what faultload prints; OK is false when a guarantee broke.
type Result struct {
	Seconds  float64                   `json:"seconds"`
	Answers  map[string]map[string]int `json:"answers"` // kind -> class -> count
	Examples []string                  `json:"examples,omitempty"`
	Events   EventCount                `json:"events"`
	Reports  ReportCount               `json:"reports"`
	Rollouts *RolloutCheck             `json:"rollouts,omitempty"`
	NotReady map[string]float64        `json:"notReadySeconds"` // server -> seconds /readyz was 503
	// Leaders counts /metrics polls (4 a second) by how many replicas
	// said they lead the controller: "0" while the lease moves, never "2".
	Leaders   map[string]int `json:"leaderPolls"`
	Reasons   []string       `json:"readyzReasons,omitempty"`
	Faults    []FaultWindow  `json:"faults,omitempty"`
	Integrity string         `json:"integrity,omitempty"`
	Problems  []string       `json:"problems,omitempty"`
	OK        bool           `json:"ok"`
}

// EventCount compares what clients were told with what the store holds.
type EventCount struct {
	Acknowledged int64 `json:"acknowledged"`
	Stored       int64 `json:"stored"` // -1: not counted
	Unacked      int64 `json:"unacknowledgedAtEnd"`
	Retries      int64 `json:"batchRetries"`
}

// ReportCount: reports are not idempotent, so a retry after a lost answer
// may store one twice; Ambiguous bounds that.
type ReportCount struct {
	Acknowledged int64 `json:"acknowledged"`
	Stored       int64 `json:"stored"`
	Ambiguous    int64 `json:"ambiguous"`
}

// RolloutCheck is the audit of the rollouts driven.
type RolloutCheck struct {
	Started       int      `json:"started"`
	Completed     int      `json:"completed"`
	Decisions     int      `json:"controllerDecisions"`
	AppliedTwice  int      `json:"appliedTwice"`
	Controllers   []string `json:"controllers"` // actors that decided: the lease moved among them
	OtherFinishes []string `json:"otherFinishes,omitempty"`
}

// FaultWindow is what clients saw from one fault to the next.
type FaultWindow struct {
	At       float64        `json:"at"` // seconds since the start
	What     string         `json:"what"`
	Failures map[string]int `json:"failures"` // class -> count
	// LastFailure is seconds from the fault to the last failed answer in
	// its window (0: none).
	LastFailure float64 `json:"lastFailureAfter"`
	NotReady    float64 `json:"notReadySeconds"`
}

// classes of answers.
const (
	ok2xx = "2xx"
	c4xx  = "4xx"
	c503  = "503"
	c5xx  = "5xx-other"
	cConn = "connection-error"
)

type sample struct {
	at          time.Time
	kind, class string
}

type recorder struct {
	mu       sync.Mutex
	start    time.Time
	samples  []sample
	examples []string
	notReady []sample // kind: server, class: reason
	leaders  []sample // kind: how many replicas said they lead
}

func (r *recorder) note(kind, class, example string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, sample{time.Now(), kind, class})
	if example != "" && len(r.examples) < 10 {
		r.examples = append(r.examples, fmt.Sprintf("at %.1f s %s", time.Since(r.start).Seconds(), example))
	}
}

// classify turns one exchange into its class and, for the unexpected, an
// example for the report.
func classify(kind string, status int, err error, body []byte) (string, string) {
	var ae *apiclient.Error
	switch {
	case errors.As(err, &ae):
		status, body = ae.Status, []byte(ae.Code+": "+ae.Message)
	case err != nil:
		return cConn, ""
	}
	switch {
	case status < 400:
		return ok2xx, ""
	case status == http.StatusServiceUnavailable:
		return c503, ""
	case status >= 500:
		return c5xx, fmt.Sprintf("%s: %d %s", kind, status, bytes.TrimSpace(body))
	}
	return c4xx, fmt.Sprintf("%s: %d %s", kind, status, bytes.TrimSpace(body))
}

func run(ctx context.Context, o options) (*Result, error) {
	for _, s := range o.servers {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" {
			return nil, fmt.Errorf("-servers %q: want http://127.0.0.1:PORT,...", s)
		}
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("%s is not on loopback: faultload only loads this machine", s)
		}
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	clients := make([]*apiclient.Client, len(o.servers))
	for i, s := range o.servers {
		c, err := apiclient.New(s, o.token, hc)
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}
	run := randHex(4)
	l := &load{o: o, hc: hc, admin: clients, run: run, rec: &recorder{start: time.Now()}}
	if err := l.seed(ctx); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	l.rec.start = time.Now()
	deadline := l.rec.start.Add(o.duration)
	var wg sync.WaitGroup
	spawn := func(n int, f func(w int, deadline time.Time)) {
		for w := range n {
			wg.Add(1)
			go func() { defer wg.Done(); f(w, deadline) }()
		}
	}
	spawn(o.resolvers, l.resolveLoop)
	spawn(o.ingesters, l.ingestLoop)
	spawn(o.reporters, l.reportLoop)
	spawn(1, l.readyLoop)
	var rc *RolloutCheck
	if o.rollouts {
		wg.Add(1)
		go func() { defer wg.Done(); rc = l.rolloutLoop(ctx, deadline) }()
	}
	wg.Wait()
	res := &Result{Seconds: time.Since(l.rec.start).Seconds(), OK: true}
	l.summarise(ctx, res)
	if rc != nil {
		l.auditRollouts(ctx, rc)
		res.Rollouts = rc
		if rc.AppliedTwice > 0 {
			res.Problems = append(res.Problems, fmt.Sprintf("%d controller decisions applied twice", rc.AppliedTwice))
		}
		if rc.Completed == 0 {
			res.Problems = append(res.Problems, "no rollout completed: the controller did not advance")
		}
	}
	res.OK = len(res.Problems) == 0
	return res, nil
}

type load struct {
	o     options
	hc    *http.Client
	admin []*apiclient.Client // one per server
	run   string
	rec   *recorder

	runner                string
	events, batchRetries  atomic.Int64
	unacked               atomic.Int64
	reports, ambiguousRep atomic.Int64
	started               []string // rollout ids, by rolloutLoop
}

// onAny calls f on each replica in turn from i until one answers other
// than a connection error or 5xx, for the set-up and the rollout driver.
func (l *load) onAny(ctx context.Context, i int, f func(c *apiclient.Client) error) error {
	var err error
	for try := range 60 {
		c := l.admin[(i+try)%len(l.admin)]
		if err = f(c); err == nil {
			return nil
		}
		var ae *apiclient.Error
		if errors.As(err, &ae) && ae.Status < 500 {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

func (l *load) seed(ctx context.Context) error {
	rings := []rollout.Ring{
		{Name: "canary", Orgs: []string{"org-0", "org-1"}, BakeTime: l.o.bake},
		{Name: "half", Percent: 50, BakeTime: l.o.bake},
		{Name: "all", Percent: 100, BakeTime: l.o.bake},
	}
	v := "base-" + l.run
	if err := l.onAny(ctx, 0, func(c *apiclient.Client) error {
		_, err := c.PushVersion(ctx, l.o.label, api.PushVersionRequest{Version: v, CheckReport: []byte(`{"verdict":"pass"}`)})
		return err
	}); err != nil {
		return err
	}
	if err := l.onAny(ctx, 0, func(c *apiclient.Client) error { return c.SetRings(ctx, l.o.label, rings) }); err != nil {
		return err
	}
	if err := l.onAny(ctx, 0, func(c *apiclient.Client) error {
		t, err := c.CreateToken(ctx, "faultload-runner-"+l.run, rollout.RoleRunner)
		l.runner = t.Token
		return err
	}); err != nil {
		return err
	}
	// Resolve needs a version that completed a rollout.
	var r rollout.Rollout
	if err := l.onAny(ctx, 0, func(c *apiclient.Client) error {
		var err error
		r, err = c.StartRollout(ctx, api.StartRolloutRequest{Label: l.o.label, Version: v})
		return err
	}); err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if err := l.onAny(ctx, 0, func(c *apiclient.Client) error {
			var err error
			r, err = c.Rollout(ctx, r.ID)
			return err
		}); err != nil {
			return err
		}
		if r.State == rollout.StateCompleted {
			return l.waitResolves(deadline)
		}
		if rollout.Terminal(r.State) || time.Now().After(deadline) {
			return fmt.Errorf("base rollout %s: %s %s", r.ID, r.State, r.Reason)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitResolves waits until every replica's routing table (refreshed on
// its own clock) resolves the label.
func (l *load) waitResolves(deadline time.Time) error {
	for _, s := range l.o.servers {
		u := fmt.Sprintf("%s/api/v1/resolve?org=org-1&label=%s", s, url.QueryEscape(l.o.label))
		for {
			status, body, err := l.get(u, l.runner)
			if err == nil && status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not resolve %s: %d %s %v", s, l.o.label, status, body, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func (l *load) resolveLoop(w int, deadline time.Time) {
	for i := 0; time.Now().Before(deadline); i++ {
		s := l.o.servers[(w+i)%len(l.o.servers)]
		u := fmt.Sprintf("%s/api/v1/resolve?org=org-%d&label=%s", s, (w*7919+i*31)%1000, url.QueryEscape(l.o.label))
		if i%2 == 1 {
			// Half with a workflow run id: run affinity writes to the store.
			u += fmt.Sprintf("&run=%s-%d-%d", l.run, w, i/8)
		}
		status, body, err := l.get(u, l.runner)
		class, ex := classify("resolve "+s, status, err, body)
		l.rec.note("resolve", class, ex)
		if class != ok2xx {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(l.o.pause)
	}
}

func (l *load) get(u, token string) (int, []byte, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// ingestLoop posts batches; a batch not acknowledged goes to the next
// replica after a pause, with the same job ids, until one acknowledges it
// (a runner's client does the same), for at most 30 s past the deadline.
func (l *load) ingestLoop(w int, deadline time.Time) {
	rc := make([]*apiclient.Client, len(l.o.servers))
	for i, s := range l.o.servers {
		rc[i], _ = apiclient.New(s, l.runner, l.hc)
	}
	for b := 0; time.Now().Before(deadline); b++ {
		evs := make([]rollout.JobEvent, l.o.batch)
		now := time.Now().UTC()
		for i := range evs {
			evs[i] = rollout.JobEvent{JobID: fmt.Sprintf("fl-%s-%d-%d-%d", l.run, w, b, i), Org: fmt.Sprintf("org-%d", i%1000),
				Label: l.o.label, Version: "base-" + l.run, Outcome: rollout.OutcomeSucceeded, StartedAt: now, DurationMs: 1000, Ring: -1}
		}
		acked := false
		for try := 0; !acked && time.Now().Before(deadline.Add(30*time.Second)); try++ {
			_, err := rc[(w+b+try)%len(rc)].PostEvents(context.Background(), evs)
			class, ex := classify("events", 200, err, nil)
			l.rec.note("events", class, ex)
			var ae *apiclient.Error
			if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
				break // refused: a retry would be refused again
			}
			if acked = err == nil; !acked {
				l.batchRetries.Add(1)
				time.Sleep(200 * time.Millisecond)
			}
		}
		if acked {
			l.events.Add(int64(len(evs)))
		} else {
			l.unacked.Add(int64(len(evs)))
		}
		time.Sleep(l.o.ingestGap)
	}
}

// reportLoop posts a user report about every 200 ms, always for one org
// (three would escalate and halt the rollouts under way).
func (l *load) reportLoop(w int, deadline time.Time) {
	for i := 0; time.Now().Before(deadline); i++ {
		c := l.admin[(w+i)%len(l.admin)]
		_, err := c.Report(context.Background(), api.ReportRequest{Label: l.o.label, Org: "org-reporter",
			Text: fmt.Sprintf("ModuleNotFoundError: No module named 'mod_%s_%d_%d'", l.run, w, i)})
		class, ex := classify("reports", 200, err, nil)
		l.rec.note("reports", class, ex)
		switch class {
		case ok2xx:
			l.reports.Add(1)
		case cConn:
			// The server may have stored it before the connection broke.
			l.ambiguousRep.Add(1)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *load) readyLoop(_ int, deadline time.Time) {
	for time.Now().Before(deadline) {
		leading := 0
		for _, s := range l.o.servers {
			if resp, err := l.hc.Get(s + "/metrics"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if bytes.Contains(b, []byte("\nimagegate_controller_leader 1\n")) {
					leading++
				}
			}
			resp, err := l.hc.Get(s + "/readyz")
			if err != nil {
				continue // down: counted by the requests it fails
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				var h struct{ Reason string }
				json.Unmarshal(b, &h)
				l.rec.mu.Lock()
				l.rec.notReady = append(l.rec.notReady, sample{time.Now(), s, h.Reason})
				l.rec.mu.Unlock()
			}
		}
		l.rec.mu.Lock()
		l.rec.leaders = append(l.rec.leaders, sample{at: time.Now(), kind: strconv.Itoa(leading)})
		l.rec.mu.Unlock()
		time.Sleep(250 * time.Millisecond)
	}
}

// rolloutLoop pushes a version and rolls it out, waits for the rollout to
// end, and starts the next, until the deadline.
func (l *load) rolloutLoop(ctx context.Context, deadline time.Time) *RolloutCheck {
	rc := &RolloutCheck{}
	for n := 0; time.Now().Before(deadline); n++ {
		v := fmt.Sprintf("r%d-%s", n, l.run)
		err := l.onAny(ctx, n, func(c *apiclient.Client) error {
			_, err := c.PushVersion(ctx, l.o.label, api.PushVersionRequest{Version: v, CheckReport: []byte(`{"verdict":"pass"}`)})
			if errors.Is(err, rollout.ErrConflict) {
				return nil // an earlier try got through
			}
			return err
		})
		if err != nil {
			rc.OtherFinishes = append(rc.OtherFinishes, fmt.Sprintf("push %s: %v", v, err))
			continue
		}
		var id string
		err = l.onAny(ctx, n, func(c *apiclient.Client) error {
			r, err := c.StartRollout(ctx, api.StartRolloutRequest{Label: l.o.label, Version: v})
			if errors.Is(err, rollout.ErrConflict) {
				// An earlier try got through: find it.
				list, lerr := c.ListRollouts(ctx, l.o.label, nil, rollout.Page{Limit: 1})
				if lerr == nil && len(list.Items) > 0 && list.Items[0].Version == v {
					r, err = list.Items[0], nil
				}
			}
			id = r.ID
			return err
		})
		if err != nil {
			rc.OtherFinishes = append(rc.OtherFinishes, fmt.Sprintf("start %s: %v", v, err))
			time.Sleep(time.Second)
			continue
		}
		rc.Started++
		l.started = append(l.started, id)
		for time.Now().Before(deadline.Add(time.Minute)) {
			var r rollout.Rollout
			if err := l.onAny(ctx, n, func(c *apiclient.Client) error {
				var err error
				r, err = c.Rollout(ctx, id)
				return err
			}); err == nil && rollout.Terminal(r.State) {
				if r.State == rollout.StateCompleted {
					rc.Completed++
				} else {
					rc.OtherFinishes = append(rc.OtherFinishes, fmt.Sprintf("%s: %s %s", id, r.State, r.Reason))
				}
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	return rc
}

// auditRollouts reads each rollout's audit log: a controller decision
// (the same action and reason on the same subject) written twice was
// applied twice.
func (l *load) auditRollouts(ctx context.Context, rc *RolloutCheck) {
	actors := map[string]bool{}
	for _, id := range l.started {
		seen := map[string]int{}
		after := ""
		for {
			var page api.List[rollout.AuditEntry]
			err := l.onAny(ctx, 0, func(c *apiclient.Client) error {
				var err error
				page, err = c.Audit(ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + id}, rollout.Page{After: after, Limit: 1000})
				return err
			})
			if err != nil {
				rc.OtherFinishes = append(rc.OtherFinishes, fmt.Sprintf("audit of %s: %v", id, err))
				break
			}
			for _, e := range page.Items {
				if e.Subject != "rollout/"+id || !strings.HasPrefix(e.Actor, "controller:") {
					continue
				}
				rc.Decisions++
				actors[e.Actor] = true
				key := e.Action + "\x00" + e.Reason
				if seen[key]++; seen[key] == 2 {
					rc.AppliedTwice++
				}
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
	}
	for a := range actors {
		rc.Controllers = append(rc.Controllers, a)
	}
	sort.Strings(rc.Controllers)
}

func (l *load) summarise(ctx context.Context, res *Result) {
	rec := l.rec
	res.Answers = map[string]map[string]int{}
	for _, s := range rec.samples {
		if res.Answers[s.kind] == nil {
			res.Answers[s.kind] = map[string]int{}
		}
		res.Answers[s.kind][s.class]++
	}
	res.Examples = rec.examples
	if n := res.Answers["resolve"][c5xx] + res.Answers["events"][c5xx] + res.Answers["reports"][c5xx]; n > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d answers 5xx other than 503", n))
	}
	res.NotReady = map[string]float64{}
	reasons := map[string]bool{}
	for _, s := range rec.notReady {
		res.NotReady[s.kind] += 0.25
		reasons[s.class] = true
	}
	for r := range reasons {
		res.Reasons = append(res.Reasons, r)
	}
	sort.Strings(res.Reasons)

	res.Leaders = map[string]int{}
	for _, s := range rec.leaders {
		res.Leaders[s.kind]++
	}
	if n := len(rec.leaders) - res.Leaders["0"] - res.Leaders["1"]; n > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d polls saw more than one replica lead the controller", n))
	}
	res.Events = EventCount{Acknowledged: l.events.Load(), Stored: -1, Unacked: l.unacked.Load(), Retries: l.batchRetries.Load()}
	prefix := "fl-" + l.run + "-"
	switch {
	case l.o.pg != "":
		n, err := countPostgres(ctx, l.o.pg, prefix)
		if err != nil {
			res.Problems = append(res.Problems, "count events: "+err.Error())
		}
		res.Events.Stored = n
	case l.o.sqlite != "":
		n, check, err := countSQLite(ctx, l.o.sqlite, prefix)
		if err != nil {
			res.Problems = append(res.Problems, "count events: "+err.Error())
		}
		res.Events.Stored, res.Integrity = n, check
		if check != "ok" {
			res.Problems = append(res.Problems, "integrity_check: "+check)
		}
	}
	if e := res.Events; e.Stored >= 0 && (e.Stored < e.Acknowledged || e.Stored > e.Acknowledged+e.Unacked) {
		res.Problems = append(res.Problems, fmt.Sprintf("events: %d acknowledged, %d stored", e.Acknowledged, e.Stored))
	}
	res.Reports = ReportCount{Acknowledged: l.reports.Load(), Ambiguous: l.ambiguousRep.Load(), Stored: l.countReports(ctx)}
	if r := res.Reports; r.Stored >= 0 && (r.Stored < r.Acknowledged || r.Stored > r.Acknowledged+r.Ambiguous) {
		res.Problems = append(res.Problems, fmt.Sprintf("reports: %d acknowledged (+%d ambiguous), %d stored", r.Acknowledged, r.Ambiguous, r.Stored))
	}
	if l.o.faults != "" {
		fw, err := faultWindows(l.o.faults, rec)
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
		res.Faults = fw
	}
}

// countReports counts this run's reports through the API (-1 if it cannot).
func (l *load) countReports(ctx context.Context) int64 {
	var n int64
	after := ""
	for {
		var page api.List[rollout.Report]
		if err := l.onAny(ctx, 0, func(c *apiclient.Client) error {
			var err error
			page, err = c.Reports(ctx, l.o.label, rollout.Page{After: after, Limit: 1000})
			return err
		}); err != nil {
			return -1
		}
		for _, r := range page.Items {
			if strings.Contains(r.Text, "mod_"+l.run+"_") {
				n++
			}
		}
		if page.Next == "" {
			return n
		}
		after = page.Next
	}
}

func countPostgres(ctx context.Context, dsn, prefix string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return -1, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, `SELECT COUNT(*) FROM events WHERE starts_with(job_id, $1)`, prefix).Scan(&n)
	return n, err
}

func countSQLite(ctx context.Context, path, prefix string) (int64, string, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return -1, "", err
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil {
		return -1, "", err
	}
	var n int64
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE substr(job_id, 1, ?) = ?`, len(prefix), prefix).Scan(&n)
	return n, check, err
}

// faultWindows reads the script's fault log and splits the answers by it.
func faultWindows(path string, rec *recorder) ([]FaultWindow, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	type fault struct {
		at   time.Time
		what string
	}
	var fs []fault
	for line := range strings.Lines(string(b)) {
		ms, what, ok := strings.Cut(strings.TrimSpace(line), " ")
		n, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil {
			continue
		}
		fs = append(fs, fault{time.UnixMilli(n), what})
	}
	slices.SortFunc(fs, func(a, b fault) int { return a.at.Compare(b.at) })
	out := make([]FaultWindow, len(fs))
	for i, f := range fs {
		end := time.Now()
		if i+1 < len(fs) {
			end = fs[i+1].at
		}
		w := FaultWindow{At: f.at.Sub(rec.start).Seconds(), What: f.what, Failures: map[string]int{}}
		for _, s := range rec.samples {
			if s.at.Before(f.at) || !s.at.Before(end) || s.class == ok2xx {
				continue
			}
			w.Failures[s.kind+" "+s.class]++
			w.LastFailure = max(w.LastFailure, s.at.Sub(f.at).Seconds())
		}
		for _, s := range rec.notReady {
			if !s.at.Before(f.at) && s.at.Before(end) {
				w.NotReady += 0.25
			}
		}
		out[i] = w
	}
	return out, nil
}

func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "%.0f s of load\n", r.Seconds)
	kinds := make([]string, 0, len(r.Answers))
	for k := range r.Answers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-8s", k)
		for _, c := range []string{ok2xx, c4xx, c503, c5xx, cConn} {
			fmt.Fprintf(w, "  %s %d", c, r.Answers[k][c])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "events: %d acknowledged, %d stored, %d unacknowledged at the end, %d batch retries\n",
		r.Events.Acknowledged, r.Events.Stored, r.Events.Unacked, r.Events.Retries)
	fmt.Fprintf(w, "reports: %d acknowledged, %d stored, %d ambiguous (connection lost)\n", r.Reports.Acknowledged, r.Reports.Stored, r.Reports.Ambiguous)
	if rc := r.Rollouts; rc != nil {
		fmt.Fprintf(w, "rollouts: %d started, %d completed, %d controller decisions, %d applied twice, decided by %d controllers %v\n",
			rc.Started, rc.Completed, rc.Decisions, rc.AppliedTwice, len(rc.Controllers), rc.Controllers)
		for _, f := range rc.OtherFinishes {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	fmt.Fprintf(w, "controller leaders per /metrics poll (4/s): %v\n", r.Leaders)
	for s, sec := range r.NotReady {
		fmt.Fprintf(w, "readyz 503 on %s for about %.1f s\n", s, sec)
	}
	for _, reason := range r.Reasons {
		fmt.Fprintf(w, "  readyz reason: %s\n", reason)
	}
	if r.Integrity != "" {
		fmt.Fprintf(w, "integrity_check: %s\n", r.Integrity)
	}
	for _, f := range r.Faults {
		fmt.Fprintf(w, "fault at %5.1f s %-28s failures %v, last %.1f s after, readyz 503 %.1f s\n", f.At, f.What, f.Failures, f.LastFailure, f.NotReady)
	}
	for _, e := range r.Examples {
		fmt.Fprintf(w, "  example: %s\n", e)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
	if r.OK {
		fmt.Fprintln(w, "ok")
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
