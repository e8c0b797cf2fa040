package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
)

// TestReplicaKillUnderLoad runs two replicas on one PostgreSQL schema
// under event load and kills the controller's leader with -9 twice while
// rollouts run: once restarted at once (it takes its own lease back), once
// left dead (the other takes the lease after its TTL). Clients see no 5xx
// but connection errors to the killed one, every acknowledged event is
// stored, both rollouts complete, and no controller decision is applied
// twice.
func TestReplicaKillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills replicas under load for about 15 s")
	}
	dsn := postgresSchema(t)
	cfg := filepath.Join(t.TempDir(), "imagegate.yaml")
	if err := os.WriteFile(cfg, []byte(`
controller: {interval: 100ms, leaseTTL: 2s}
# No job is attributed to a ring here: only bake time gates (see TestKillDuringRollout).
analysis: {action: dry-run}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"IMAGEGATE_ADMIN_TOKEN=" + crashAdmin}
	ports := []int{freePort(t), freePort(t)}
	args := func(i int) []string {
		return []string{"--db", dsn, "--config", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	procs := []*serverProc{startServer(t, env, args(0)...), startServer(t, env, args(1)...)}
	urls := []string{procs[0].url, procs[1].url}
	loadURLs := append([]string(nil), urls...) // the load keeps trying both
	ctx := context.Background()
	c := adminClient(t, urls[0])
	for _, v := range []string{"v0", "v1", "v2"} {
		if _, err := c.PushVersion(ctx, "kill", api.PushVersionRequest{Version: v, CheckReport: []byte(`{"verdict":"pass"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	rings := []rollout.Ring{
		{Name: "canary", Orgs: []string{"org-0"}, BakeTime: 1500 * time.Millisecond},
		{Name: "half", Percent: 50, BakeTime: 1500 * time.Millisecond},
		{Name: "all", Percent: 100, BakeTime: 1500 * time.Millisecond},
	}
	if err := c.SetRings(ctx, "kill", rings); err != nil {
		t.Fatal(err)
	}
	// v0 becomes the default (a first rollout has nothing to bake
	// against); v1 and v2 then roll out through the rings.
	first, err := c.StartRollout(ctx, api.StartRolloutRequest{Label: "kill", Version: "v0"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := c.Rollout(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == rollout.StateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first rollout: %s %s", r.State, r.Reason)
		}
	}

	// Event load on both replicas: a batch is retried on the other one
	// until acknowledged, as a runner's client does.
	var acked atomic.Int64
	var bad sync.Map // unexpected answers
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopLoad := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				evs := make([]rollout.JobEvent, 100)
				for i := range evs {
					evs[i] = rollout.JobEvent{JobID: fmt.Sprintf("w%d-b%d-%d", w, b, i), Org: fmt.Sprintf("org-%d", i), Label: "kill",
						Version: "v0", Ring: -1, Outcome: rollout.OutcomeSucceeded, StartedAt: time.Now().UTC(), DurationMs: 1}
				}
				for try := 0; ; try++ {
					rc, _ := apiclient.New(loadURLs[(w+b+try)%2], crashAdmin, nil)
					_, err := rc.PostEvents(ctx, evs)
					if err == nil {
						acked.Add(int64(len(evs)))
						break
					}
					var ae *apiclient.Error
					if errors.As(err, &ae) {
						bad.Store(err.Error(), true)
						if ae.Status < 500 {
							break
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	defer stopLoad()

	leader := func() int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			for i, u := range urls {
				if leads(u) {
					return i
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("no replica leads the controller")
		return -1
	}
	// run starts a rollout of v and kills the leader once it left ring 0;
	// restart says whether the killed one comes back at once.
	run := func(v string, restart bool) string {
		t.Helper()
		r, err := adminClient(t, urls[leader()]).StartRollout(ctx, api.StartRolloutRequest{Label: "kill", Version: v})
		if err != nil {
			t.Fatal(err)
		}
		killed := false
		deadline := time.Now().Add(30 * time.Second)
		for {
			var got rollout.Rollout
			for _, u := range urls {
				if got, err = adminClient(t, u).Rollout(ctx, r.ID); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.State == rollout.StateCompleted {
				break
			}
			if rollout.Terminal(got.State) || time.Now().After(deadline) {
				t.Fatalf("rollout %s of %s is %s in ring %d (%s), want completed", r.ID, v, got.State, got.Ring, got.Reason)
			}
			if !killed && got.Ring >= 1 {
				i := leader()
				procs[i].kill9(t)
				if restart {
					procs[i] = startServer(t, env, args(i)...)
				}
				t.Logf("%s: killed leader %d in ring %d (restarted at once: %v)", v, i, got.Ring, restart)
				killed = true
				if !restart {
					// The survivor leads after the lease TTL; only it is asked from now on.
					urls = []string{urls[1-i]}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !killed {
			t.Fatalf("rollout of %s completed before the leader was killed; the test proves nothing", v)
		}
		return r.ID
	}
	ids := []string{run("v1", true), run("v2", false)}
	time.Sleep(300 * time.Millisecond)
	stopLoad()

	bad.Range(func(k, _ any) bool {
		t.Errorf("unexpected answer under load: %v", k)
		return true
	})
	actors := map[string]bool{}
	for _, id := range ids {
		audit, err := adminClient(t, urls[0]).Audit(ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + id}, rollout.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range audit.Items {
			if e.Subject != "rollout/"+id || len(e.Actor) < 11 || e.Actor[:11] != "controller:" {
				continue
			}
			actors[e.Actor] = true
			if k := e.Action + " " + e.Reason; seen[k] {
				t.Errorf("rollout %s: %q applied twice", id, k)
			} else {
				seen[k] = true
			}
		}
		// Start in ring 0, leave rings 0 and 1, complete.
		if len(seen) != len(rings)+1 {
			t.Errorf("rollout %s: controller decisions %v, want %d", id, seen, len(rings)+1)
		}
	}
	if len(actors) < 2 {
		t.Errorf("decisions by %v: the lease never moved to the other replica", actors)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored int64
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM events WHERE label = 'kill'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != acked.Load() {
		t.Errorf("events: %d acknowledged, %d stored", acked.Load(), stored)
	}
	t.Logf("%d events acknowledged and stored; controllers %v", stored, actors)
}
