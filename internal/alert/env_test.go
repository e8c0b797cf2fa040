package alert_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/postgres"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/testenv"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// received is one POST a receiver answered with a 2xx.
type received struct {
	Path, Key, ContentType string
	Body                   []byte
}

// receiver is a real webhook endpoint: status decides the answer to the
// n-th request (1-based); only 2xx answers count as received.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	status   func(n int) int
	requests int
	got      []received
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	return newReceiverWrapped(t, status, nil)
}

// newReceiverWrapped is newReceiver with wrap around its handler (for
// headers, hangs).
func newReceiverWrapped(t *testing.T, status func(n int) int, wrap func(http.Handler) http.Handler) *receiver {
	t.Helper()
	r := &receiver{status: status}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.requests++
		code := http.StatusOK
		if r.status != nil {
			code = r.status(r.requests)
		}
		if code/100 == 2 {
			r.got = append(r.got, received{Path: req.URL.Path, Key: req.Header.Get("X-Imagegate-Alert-Key"),
				ContentType: req.Header.Get("Content-Type"), Body: body})
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code))
	})
	if wrap != nil {
		h = wrap(h)
	}
	r.Server = httptest.NewServer(h)
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *receiver) count() (requests, received int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, len(r.got)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openSQLite(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func tempSQLite(t *testing.T) *sqlite.DB {
	return openSQLite(t, filepath.Join(t.TempDir(), "imagegate.db"))
}

// postgresSchema creates a schema dropped at the end of the test and
// returns a DSN whose search_path is it.
func postgresSchema(t *testing.T) string {
	t.Helper()
	dsn := testenv.RequirePostgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to IMAGEGATE_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_alert_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openPostgres(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqliteAlert is the 2019 story's alert.
func sqliteAlert(id string) rollout.Alert {
	return rollout.Alert{
		ID: id, Kind: rollout.AlertRollback, Label: "ubuntu-22.04", Version: "20260301.2", FromVersion: "20260215.1",
		RolloutID: "r-7", Ring: 0, RingName: "canary",
		Signature: rollout.AlertSignature{ID: "s-3f2a9c", Template: "ModuleNotFoundError: No module named '_sqlite3' <*>"},
		ProbableCause: []rollout.AlertCause{
			{Identity: "runtime/python@3.7/module/sqlite3", Why: "_sqlite3 is part of it (removed)"},
			{Identity: "package/deb/libsqlite3-0", Why: "sqlite3 ~ libsqlite3-0"},
		},
		Summary:   "Rolled back: 9 pipelines in 4 orgs fail with this signature on 20260301.2, none on 20260215.1 (BF 2400 ≥ 1000).",
		Link:      rollout.AnalysisPath("r-7"),
		CreatedAt: t0,
	}
}

func mustOutbox(t *testing.T, st rollout.OutboxStore, targets []alert.Target, clock rollout.Clock) *alert.Outbox {
	t.Helper()
	o, err := alert.NewOutbox(st, targets, clock)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func mustSender(t *testing.T, st rollout.OutboxStore, opts alert.SenderOptions) *alert.Sender {
	t.Helper()
	s, err := alert.NewSender(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
