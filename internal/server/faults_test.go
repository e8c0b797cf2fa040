package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/postgres"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

// faultEnv is a server on the real clock over st, seeded with a label
// mid-rollout (faults) and a runner token, for tests that break the
// store's dependencies underneath it.
type faultEnv struct {
	url    string
	runner string
	prefix string // of event ids
	seq    int
}

func newFaultEnv(t *testing.T, st rollout.Store) *faultEnv {
	t.Helper()
	ctx := context.Background()
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{RefreshInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := server.BootstrapAdmin(ctx, st, adminSecret, io.Discard, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A short token cache: its entries expire during an outage.
	srv, err := server.New(server.Options{Service: svc, Store: st, TokenCacheTTL: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e := &faultEnv{url: hs.URL, prefix: "probe"}
	admin := (&env{URL: hs.URL}).client(t, adminSecret)
	if err := admin.SetRings(ctx, "", []rollout.Ring{{Name: "all", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	mustPush(t, admin, "faults", "v1", `{"verdict":"pass"}`)
	if _, err := admin.StartRollout(ctx, api.StartRolloutRequest{Label: "faults", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, "fault-runner", rollout.RoleRunner)
	if err != nil {
		t.Fatal(err)
	}
	e.runner = tok.Token
	return e
}

// answer is one response: status, Retry-After and the error code.
type answer struct {
	status     int
	retryAfter string
	code, msg  string
}

func (e *faultEnv) do(t *testing.T, method, path, token string, body any) answer {
	t.Helper()
	a, err := e.try(method, path, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// try is do for goroutines: it returns what went wrong.
func (e *faultEnv) try(method, path, token string, body any) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		return answer{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode >= 400 {
		var eb api.ErrorBody
		b, _ := io.ReadAll(resp.Body)
		if path == "/readyz" {
			a.msg = string(b)
		} else if err := json.Unmarshal(b, &eb); err != nil {
			return a, fmt.Errorf("%s %s: %d with a body that is not the JSON error: %q", method, path, resp.StatusCode, b)
		}
		a.code = eb.Error.Code
		if a.msg == "" {
			a.msg = eb.Error.Message
		}
	}
	return a, nil
}

// events returns a batch of n new job events.
func (e *faultEnv) events(n int) []rollout.JobEvent {
	evs := make([]rollout.JobEvent, n)
	for i := range evs {
		e.seq++
		evs[i] = rollout.JobEvent{JobID: fmt.Sprintf("%s-%d", e.prefix, e.seq), Org: "org-1", Label: "faults", Version: "v1",
			Outcome: rollout.OutcomeSucceeded, StartedAt: time.Now().UTC(), DurationMs: 1000, Ring: 0}
	}
	return evs
}

// wantUnavailable fails t unless a is the 503 a failing dependency
// answers: JSON code unavailable, a message naming cause, Retry-After.
func wantUnavailable(t *testing.T, what string, a answer, cause string) {
	t.Helper()
	if a.status != http.StatusServiceUnavailable || a.code != api.CodeUnavailable || a.retryAfter == "" || !strings.Contains(a.msg, cause) {
		t.Errorf("%s: %d %q %q (Retry-After %q), want 503 unavailable naming %q with Retry-After", what, a.status, a.code, a.msg, a.retryAfter, cause)
	}
}

// TestSQLiteDiskFull fills the file system under a SQLite database: writes
// answer 503 with a JSON error and Retry-After (never 500), /readyz says
// the disk is full, reads still answer, nothing acknowledged is lost, the
// file stays intact, and everything recovers by itself once space returns.
func TestSQLiteDiskFull(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=6m"); err != nil {
		testenv.Require(t, false, "mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	path := filepath.Join(dir, "imagegate.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newFaultEnv(t, st)
	acked := 0
	post := func() answer {
		a := e.do(t, "POST", "/api/v1/events", e.runner, e.events(200))
		if a.status == http.StatusOK {
			acked += 200
		}
		return a
	}
	if a := post(); a.status != http.StatusOK {
		t.Fatalf("events before the disk fills: %+v", a)
	}

	ballast := filepath.Join(dir, "ballast")
	fill(t, ballast)
	var full answer
	for range 200 {
		if full = post(); full.status != http.StatusOK {
			break
		}
	}
	wantUnavailable(t, "events on a full disk", full, "disk full")
	push := e.do(t, "POST", "/api/v1/images/faults/versions", adminSecret,
		api.PushVersionRequest{Version: "v2", Snapshot: []byte(`{"schemaVersion":1,"pad":"` + strings.Repeat("x", 2<<20) + `"}`), CheckReport: []byte(`{"verdict":"pass"}`)})
	wantUnavailable(t, "push on a full disk", push, "disk full")
	if a := e.do(t, "GET", "/readyz", "", nil); a.status != http.StatusServiceUnavailable || !strings.Contains(a.msg, "disk full") {
		t.Errorf("readyz on a full disk: %d %s, want 503 naming the full disk", a.status, a.msg)
	}
	for _, p := range []string{"/api/v1/resolve?org=org-1&label=faults", "/api/v1/images", "/api/v1/images/faults/versions", "/api/v1/images/faults/status", "/api/v1/audit"} {
		if a := e.do(t, "GET", p, adminSecret, nil); a.status != http.StatusOK {
			t.Errorf("read %s on a full disk: %+v", p, a)
		}
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a := post(); a.status != http.StatusOK; a = post() {
		if time.Now().After(deadline) {
			t.Fatalf("events after space returned: %+v", a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a := e.do(t, "GET", "/readyz", "", nil); a.status != http.StatusOK {
		t.Errorf("readyz after space returned and a write succeeded: %d %s", a.status, a.msg)
	}
	if a := e.do(t, "POST", "/api/v1/images/faults/versions", adminSecret,
		api.PushVersionRequest{Version: "v2", Snapshot: []byte(`{"schemaVersion":1}`), CheckReport: []byte(`{"verdict":"pass"}`)}); a.status != http.StatusCreated && a.status != http.StatusOK {
		t.Errorf("push after space returned: %+v", a)
	}

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q, %v", check, err)
	}
	var stored int
	if err := db.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != acked {
		t.Errorf("events stored %d, acknowledged %d", stored, acked)
	}
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			break
		}
	}
	// The last partial block too, so not a page is left.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			return
		}
	}
}

// pgCluster is a PostgreSQL server of its own in a temporary directory,
// which a test may stop and start (the shared one must keep running).
type pgCluster struct {
	t          *testing.T
	bin        string // the server binaries' directory
	data, sock string
	port       int
	asPostgres bool // root runs the server binaries as the postgres user
}

func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	c := &pgCluster{t: t, bin: pgBinDir()}
	for _, tool := range []string{"initdb", "pg_ctl"} {
		_, err := os.Stat(filepath.Join(c.bin, tool))
		testenv.Require(t, err == nil, "PostgreSQL's %s not found (on PATH, in pg_config --bindir or /usr/lib/postgresql/*/bin): %v", tool, err)
	}
	base, err := os.MkdirTemp("", "imagegate-pgfault-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		testenv.Require(t, err == nil, "root needs a postgres user to run a PostgreSQL server: %v", err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.asPostgres = true
	}
	c.data, c.sock = filepath.Join(base, "data"), base
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.run("initdb", "-D", c.data, "-U", "imagegate", "--auth=trust", "-E", "UTF8", "--no-sync")
	c.start()
	t.Cleanup(func() { c.pgCtl("stop", "-m", "immediate") })
	return c
}

func (c *pgCluster) dsn() string {
	return fmt.Sprintf("postgres://imagegate@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// pgBinDir finds initdb and pg_ctl, which Debian keeps off PATH.
func pgBinDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); dir != "" {
			if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
				return dir
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(dirs) == 0 {
		return ""
	}
	return dirs[len(dirs)-1]
}

func (c *pgCluster) run(name string, args ...string) {
	c.t.Helper()
	name = filepath.Join(c.bin, name)
	cmd := exec.Command(name, args...)
	if c.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (c *pgCluster) pgCtl(args ...string) {
	c.t.Helper()
	c.run("pg_ctl", append([]string{"-D", c.data, "-w", "-l", filepath.Join(c.sock, "log")}, args...)...)
}

func (c *pgCluster) start() {
	c.t.Helper()
	c.pgCtl("start", "-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB -c max_connections=40", c.port, c.sock))
}

// TestPostgresRestart stops PostgreSQL under a server taking events and
// resolves, and starts it again: while it is down, writes answer 503 with
// Retry-After (never 500) and /readyz 503, resolve answers from memory;
// afterwards everything recovers without restarting the server, and every
// acknowledged event is stored.
func TestPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server of its own")
	}
	pg := newPGCluster(t)
	st, err := postgres.Open(context.Background(), pg.dsn())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newFaultEnv(t, st)

	// Load beside the test's own probes: what each status was answered.
	var mu sync.Mutex
	statuses := map[string]int{}
	acked := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	load := &faultEnv{url: e.url, runner: e.runner, prefix: "load"}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, aerr := load.try("POST", "/api/v1/events", load.runner, load.events(50))
			r, rerr := load.try("GET", "/api/v1/resolve?org=org-2&label=faults", load.runner, nil)
			mu.Lock()
			if a.status == http.StatusOK {
				acked += 50
			}
			statuses[fmt.Sprintf("events %d", a.status)]++
			statuses[fmt.Sprintf("resolve %d", r.status)]++
			if err := errors.Join(aerr, rerr); err != nil {
				statuses["error: "+err.Error()]++
			}
			mu.Unlock()
			if a.status == http.StatusServiceUnavailable {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)

	pg.pgCtl("stop", "-m", "fast")
	down := time.Now()
	wantUnavailable(t, "events while PostgreSQL is down", e.do(t, "POST", "/api/v1/events", e.runner, e.events(10)), "database")
	wantUnavailable(t, "push while PostgreSQL is down", e.do(t, "POST", "/api/v1/images/faults/versions", adminSecret,
		api.PushVersionRequest{Version: "v2", Snapshot: []byte(`{"schemaVersion":1}`)}), "database")
	if a := e.do(t, "GET", "/readyz", "", nil); a.status != http.StatusServiceUnavailable || !strings.Contains(a.msg, "database") {
		t.Errorf("readyz while PostgreSQL is down: %d %s", a.status, a.msg)
	}
	time.Sleep(200 * time.Millisecond) // past the token cache's TTL
	if a := e.do(t, "GET", "/api/v1/resolve?org=org-1&label=faults", e.runner, nil); a.status != http.StatusOK {
		t.Errorf("resolve while PostgreSQL is down, the runner's token cached and expired: %+v", a)
	}
	if a := e.do(t, "GET", "/api/v1/resolve?org=org-1&label=faults", "never-seen-token", nil); a.status != http.StatusServiceUnavailable {
		t.Errorf("resolve while PostgreSQL is down with a token never looked up: %+v, want 503 (it cannot be checked)", a)
	}
	time.Sleep(time.Second)
	pg.start()
	up := time.Now()
	t.Logf("PostgreSQL down %v", up.Sub(down).Round(10*time.Millisecond))

	deadline := time.Now().Add(20 * time.Second)
	for {
		a := e.do(t, "POST", "/api/v1/events", e.runner, e.events(10))
		r := e.do(t, "GET", "/readyz", "", nil)
		if a.status == http.StatusOK && r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 20 s after PostgreSQL came back: events %+v, readyz %+v", a, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("events and readyz answer 200 again %v after PostgreSQL was started", time.Since(up).Round(10*time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("answers under load: %v", statuses)
	for s, n := range statuses {
		if !strings.HasSuffix(s, " 200") && !strings.HasSuffix(s, " 503") {
			t.Errorf("%d answers %q under load", n, s)
		}
	}
	if stored := storedEvents(t, pg.dsn(), "load-"); stored != acked {
		t.Errorf("load: events stored %d, acknowledged %d", stored, acked)
	}
}

// storedEvents counts the events whose job id starts with prefix.
func storedEvents(t *testing.T, dsn, prefix string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM events WHERE starts_with(job_id, $1)`, prefix).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
