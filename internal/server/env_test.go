package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

const adminSecret = "admin-secret-for-tests"

// env is a real server over HTTP: SQLite store, rollout.Service and
// Controller on a controllable clock, and clients for each role.
type env struct {
	URL    string
	clock  *testenv.Clock // shared by the service, controller and server
	st     *sqlite.DB
	svc    *rollout.Service
	ctl    *rollout.Controller
	srv    *server.Server
	reg    *prometheus.Registry
	admin  *apiclient.Client
	runner *apiclient.Client
	// orgs holds a client per organisation token created with orgClient.
	tokens map[string]string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "imagegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ctl := rollout.NewController(svc, st, rollout.ControllerOptions{Holder: "test", Clock: clk})
	if err := server.BootstrapAdmin(ctx, st, adminSecret, io.Discard, clk.Now()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reports, err := rollout.NewReports(svc, st, rollout.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Service: svc, Store: st, Controller: ctl, Registry: reg, Now: clk.Now, Reports: reports,
		Verify: rollout.NewVerifications(svc, st, rollout.VerifyOptions{}), Notices: rollout.NewNotices(svc, st, rollout.NoticeOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e := &env{URL: hs.URL, clock: clk, st: st, svc: svc, ctl: ctl, srv: srv, reg: reg, tokens: map[string]string{"admin": adminSecret}}
	e.admin = e.client(t, adminSecret)
	e.runner = e.client(t, e.token(t, "runner"))
	return e
}

func (e *env) client(t testing.TB, token string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(e.URL, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// token creates (once) a token of role through the API and returns it.
func (e *env) token(t testing.TB, role string) string {
	t.Helper()
	if tok, ok := e.tokens[role]; ok {
		return tok
	}
	resp, err := e.admin.CreateToken(context.Background(), "test-"+role, role)
	if err != nil {
		t.Fatalf("create %s token: %v", role, err)
	}
	e.tokens[role] = resp.Token
	return resp.Token
}

// org returns a client holding org's own token.
func (e *env) org(t testing.TB, org string) *apiclient.Client {
	return e.client(t, e.token(t, rollout.RoleOrgPrefix+org))
}

// tick advances the clock by d and runs one controller pass.
func (e *env) tick(t testing.TB, d time.Duration) {
	t.Helper()
	e.clock.Advance(d)
	if err := e.ctl.Tick(context.Background()); err != nil {
		t.Fatalf("controller tick: %v", err)
	}
}

// orgsByRing finds, for each ring of plan, an organisation that falls in
// it and is not in the ring's control share.
func orgsByRing(t testing.TB, plan []rollout.Ring) []string {
	t.Helper()
	out := make([]string, len(plan))
	for i := 0; i < 10000; i++ {
		org := fmt.Sprintf("org-%d", i)
		r := rollout.RingOf(plan, org)
		if out[r] == "" && !rollout.InControl(plan[r], org) {
			out[r] = org
		}
	}
	for i, o := range out {
		if o == "" && len(plan[i].Orgs) > 0 {
			out[i] = plan[i].Orgs[0]
		}
		if out[i] == "" {
			t.Fatalf("no organisation falls in ring %d of %+v", i, plan)
		}
	}
	return out
}

func mustPush(t testing.TB, c *apiclient.Client, label, version, report string) rollout.Version {
	t.Helper()
	req := api.PushVersionRequest{Version: version, Snapshot: []byte(`{"schemaVersion":1}`)}
	if report != "" {
		req.CheckReport = []byte(report)
	}
	v, err := c.PushVersion(context.Background(), label, req)
	if err != nil {
		t.Fatalf("push %s %s: %v", label, version, err)
	}
	return v
}
