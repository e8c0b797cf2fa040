package client_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/sqlite"
)

const (
	label       = "ubuntu-22.04"
	adminSecret = "client-test-admin-token-0123456789"
)

// env is a real imagegate server (internal/server over a SQLite store) on a
// fixed address that a test can stop and start again, as an operator
// restarting it would.
type env struct {
	addr   string
	URL    string
	st     *sqlite.DB
	h      http.Handler
	admin  *apiclient.Client
	runner string // a runner token

	mu  sync.Mutex
	srv *http.Server
	// dropAfterIngest: the number of the events request (counted from 1)
	// that is stored and then answered by a dropped connection, as when
	// the server dies between committing and replying.
	dropAfterIngest int64
	eventsRequests  atomic.Int64
}

// newEnv starts the server; opts adjust its options (rate limits, say).
func newEnv(t *testing.T, opts ...func(*server.Options)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "imagegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := server.BootstrapAdmin(ctx, st, adminSecret, io.Discard, time.Now()); err != nil {
		t.Fatal(err)
	}
	so := server.Options{Service: svc, Store: st}
	for _, o := range opts {
		o(&so)
	}
	srv, err := server.New(so)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st}
	e.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/events" {
			if n := e.eventsRequests.Add(1); n == e.dropAfterIngest {
				srv.ServeHTTP(discard{}, r)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
		}
		srv.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	e.URL = "http://" + e.addr
	e.serve(l)
	t.Cleanup(e.stop)

	e.admin, err = apiclient.New(e.URL, adminSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.admin.SetRings(ctx, "", []rollout.Ring{{Name: "everyone", Percent: 100}}); err != nil {
		t.Fatal(err)
	}
	tok, err := e.admin.CreateToken(ctx, "runner", rollout.RoleRunner)
	if err != nil {
		t.Fatal(err)
	}
	e.runner = tok.Token
	return e
}

func (e *env) serve(l net.Listener) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.srv = &http.Server{Handler: e.h}
	go e.srv.Serve(l)
}

// stop kills the server: open connections are closed, requests in flight
// get no answer.
func (e *env) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

// start brings the server back on the same address and store.
func (e *env) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", e.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", e.addr, err)
	}
	e.serve(l)
}

// release pushes version (passing its gate) and rolls it out to everyone.
func (e *env) release(t *testing.T, version string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.admin.PushVersion(ctx, label, api.PushVersionRequest{Version: version, CheckReport: []byte(`{"verdict":"pass"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: version}); err != nil {
		t.Fatal(err)
	}
}

// jobs counts the jobs stored for version.
func (e *env) jobs(t *testing.T, version string) rollout.JobCounts {
	t.Helper()
	c, err := e.st.CountJobs(context.Background(), label, version, -1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// discard is a ResponseWriter for a request whose answer is lost.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

func jobID(i int) string { return fmt.Sprintf("job-%04d", i) }
