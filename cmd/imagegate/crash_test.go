package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/sqlite"
)

const crashAdmin = "crash-test-admin-token"

func adminClient(t testing.TB, url string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(url, crashAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func eventBatch(batch, n int, at time.Time) []rollout.JobEvent {
	evs := make([]rollout.JobEvent, n)
	for i := range evs {
		evs[i] = rollout.JobEvent{JobID: fmt.Sprintf("b%d-j%d", batch, i), Org: fmt.Sprintf("org-%d", i%37), Label: "crash",
			Version: fmt.Sprintf("b%d", batch), Ring: i % 3, Outcome: rollout.OutcomeSucceeded, StartedAt: at, DurationMs: int64(i)}
	}
	return evs
}

// TestKillDuringIngest kills the server with SIGKILL while clients post
// event batches: after a restart every acknowledged batch is stored
// whole, and no batch is stored in part.
func TestKillDuringIngest(t *testing.T) {
	db := filepath.Join(t.TempDir(), "imagegate.db")
	env := []string{"IMAGEGATE_ADMIN_TOKEN=" + crashAdmin}
	s := startServer(t, env, "--db", db)
	c := adminClient(t, s.url)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second)
	// Events are accepted for registered images only.
	if _, err := c.PushVersion(ctx, "crash", api.PushVersionRequest{Version: "b-seed"}); err != nil {
		t.Fatal(err)
	}

	const workers, perBatch = 4, 500
	var mu sync.Mutex
	var acked, sent []int
	var wg sync.WaitGroup
	started := make(chan struct{}, 64)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				b := w*100000 + i
				mu.Lock()
				sent = append(sent, b)
				mu.Unlock()
				if _, err := c.PostEvents(ctx, eventBatch(b, perBatch, at)); err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked = append(acked, b)
				mu.Unlock()
				select {
				case started <- struct{}{}:
				default:
				}
			}
		}()
	}
	for range 12 { // let some batches through, then kill mid-stream
		<-started
	}
	s.kill9(t)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no batch was acknowledged before the kill")
	}

	s2 := startServer(t, env, "--db", db)
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	isAcked := map[int]bool{}
	for _, b := range acked {
		isAcked[b] = true
	}
	partial, lost := 0, 0
	for _, b := range sent {
		n, err := st.CountJobs(ctx, "crash", fmt.Sprintf("b%d", b), -1, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case isAcked[b] && n.Total != perBatch:
			lost++
			t.Errorf("acknowledged batch b%d has %d of %d events after the crash", b, n.Total, perBatch)
		case n.Total != 0 && n.Total != perBatch:
			partial++
			t.Errorf("unacknowledged batch b%d is stored in part: %d of %d events", b, n.Total, perBatch)
		}
	}
	t.Logf("%d batches sent, %d acknowledged before kill -9; %d lost, %d partial", len(sent), len(acked), lost, partial)

	// Retrying an acknowledged batch stores nothing new.
	resp, err := adminClient(t, s2.url).PostEvents(ctx, eventBatch(acked[0], perBatch, at))
	if err != nil || resp.New != 0 || resp.Received != perBatch {
		t.Fatalf("retry of an acknowledged batch: %+v, %v; want 0 new of %d", resp, err, perBatch)
	}
}

// TestKillDuringRollout kills the server with SIGKILL several times while
// its controller moves a rollout through the rings: after each restart
// the rollout resumes from the stored state and completes, its ring never
// went backwards in the audit log, and every org then gets the new version.
func TestKillDuringRollout(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "imagegate.db")
	cfg := filepath.Join(dir, "imagegate.yaml")
	os.WriteFile(cfg, []byte(`
rings:
  - {name: canary, orgs: [imagegate-team], bakeTime: 400ms}
  - {name: early, percent: 30, bakeTime: 400ms}
  - {name: late, percent: 60, bakeTime: 400ms}
  - {name: everyone, percent: 100}
controller: {interval: 50ms, leaseTTL: 500ms}
# No job runs here: the telemetry gate (on by default) would hold ring 0
# for want of data. This test is about restarts, so it only records.
analysis: {action: dry-run}
`), 0o644)
	env := []string{"IMAGEGATE_ADMIN_TOKEN=" + crashAdmin}
	args := []string{"--db", db, "--config", cfg}
	s := startServer(t, env, args...)
	ctx := context.Background()
	c := adminClient(t, s.url)
	for _, v := range []string{"v1", "v2"} {
		if _, err := c.PushVersion(ctx, "crash", api.PushVersionRequest{Version: v, CheckReport: []byte(`{"verdict":"pass"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.StartRollout(ctx, api.StartRolloutRequest{Label: "crash", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	r, err := c.StartRollout(ctx, api.StartRolloutRequest{Label: "crash", Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	midway := 0
	for i := range 3 {
		time.Sleep(time.Duration(150+130*i) * time.Millisecond)
		before, err := adminClient(t, s.url).Rollout(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.kill9(t)
		t.Logf("kill -9 with the rollout %s in ring %d", before.State, before.Ring)
		if before.State == rollout.StateBaking {
			midway++
		}
		s = startServer(t, env, args...)
	}
	if midway == 0 {
		t.Fatal("no kill happened while the rollout was baking; the test proves nothing")
	}
	c = adminClient(t, s.url)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := c.Rollout(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == rollout.StateCompleted {
			break
		}
		if rollout.Terminal(got.State) || time.Now().After(deadline) {
			t.Fatalf("rollout is %s in ring %d (%s), want completed", got.State, got.Ring, got.Reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
	audit, err := c.Audit(ctx, rollout.AuditFilter{SubjectPrefix: "rollout/" + r.ID}, rollout.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for i := len(audit.Items) - 1; i >= 0; i-- { // oldest first
		var d struct {
			Ring *int `json:"ring"`
		}
		json.Unmarshal(audit.Items[i].Details, &d)
		if d.Ring == nil {
			continue
		}
		if *d.Ring < last {
			t.Errorf("audit: ring went from %d back to %d at %+v", last, *d.Ring, audit.Items[i])
		}
		last = *d.Ring
	}
	for _, org := range []string{"imagegate-team", "org-1", "org-2", "org-3", "org-4"} {
		res, err := c.Resolve(ctx, org, "crash", "")
		if err != nil || res.Version != "v2" {
			t.Errorf("resolve %s after completion: %+v, %v", org, res, err)
		}
	}
}
