package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

// RunOutbox runs the rollout.OutboxStore contract tests against stores made
// by open (the same rules as Run's open).
func RunOutbox(t *testing.T, open func(t *testing.T) rollout.OutboxStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s rollout.OutboxStore)
	}{
		{"Enqueue", testOutboxEnqueue},
		{"EnqueueRefused", testOutboxRefused},
		{"Claim", testOutboxClaim},
		{"AckFail", testOutboxAckFail},
		{"List", testOutboxList},
		{"ConcurrentClaims", testOutboxConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// OutboxItem returns an item with dedupe key key for a halt alert of img.
func OutboxItem(key string, created time.Time) rollout.OutboxItem {
	return rollout.OutboxItem{
		Key: key, URL: "http://127.0.0.1:1/hook?token=s3cret", Format: "json", CreatedAt: created,
		Alert: rollout.Alert{
			ID: "rollout/r-1/rev/3", Kind: rollout.AlertHalt, Label: "img", Version: "v2", FromVersion: "v1",
			RolloutID: "r-1", Ring: 0, RingName: "canary",
			Signature:     rollout.AlertSignature{ID: "sig-1", Template: "ModuleNotFoundError: No module named '_sqlite3'"},
			ProbableCause: []rollout.AlertCause{{Identity: "runtime/python@3.7/module/sqlite3", Why: "_sqlite3 is part of it"}},
			Summary:       "halted in ring 0", Link: rollout.AnalysisPath("r-1"), CreatedAt: created,
			Details: json.RawMessage(`{"bf":1234.5}`),
		},
	}
}

func allOutbox(t *testing.T, s rollout.OutboxStore, f rollout.OutboxFilter) []rollout.OutboxItem {
	t.Helper()
	var all []rollout.OutboxItem
	p := rollout.Page{Limit: 2}
	for {
		got, next, err := s.ListOutbox(ctx(t), f, p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
		if next == "" {
			return all
		}
		p.After = next
	}
}

func keys(items []rollout.OutboxItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

func testOutboxEnqueue(t *testing.T, s rollout.OutboxStore) {
	a, b := OutboxItem("rollout/r-1/rev/3/aaa", T0), OutboxItem("rollout/r-1/rev/3/bbb", T0)
	b.Format = "slack"
	n, err := s.Enqueue(ctx(t), []rollout.OutboxItem{a, b, a})
	must(t, err)
	if n != 2 {
		t.Errorf("Enqueue of two items (one repeated) added %d, want 2", n)
	}
	// A controller that crashed after enqueueing decides again: nothing new.
	c := OutboxItem("rollout/r-1/rev/4/aaa", T0)
	n, err = s.Enqueue(ctx(t), []rollout.OutboxItem{b, a, c})
	must(t, err)
	if n != 1 {
		t.Errorf("re-Enqueue of two stored keys and a new one added %d, want 1", n)
	}
	got := allOutbox(t, s, rollout.OutboxFilter{})
	if len(got) != 3 {
		t.Fatalf("ListOutbox: %d items, want 3: %v", len(got), keys(got))
	}
	want := a
	want.ID, want.NextAttemptAt = got[2].ID, T0
	if diff := cmp.Diff(want, got[2]); diff != "" {
		t.Errorf("stored item differs (-enqueued +stored):\n%s", diff)
	}
	if got[0].Key != c.Key || got[1].Key != b.Key || got[1].Format != "slack" {
		t.Errorf("ListOutbox order = %v, want newest first", keys(got))
	}
	if got[0].ID <= got[1].ID || got[1].ID <= got[2].ID {
		t.Errorf("IDs %d %d %d do not increase with insertion", got[2].ID, got[1].ID, got[0].ID)
	}
}

func testOutboxRefused(t *testing.T, s rollout.OutboxStore) {
	good := OutboxItem("k/good", T0)
	for _, tc := range []struct {
		name string
		mod  func(*rollout.OutboxItem)
	}{
		{"no key", func(it *rollout.OutboxItem) { it.Key = "" }},
		{"no url", func(it *rollout.OutboxItem) { it.URL = "" }},
		{"no format", func(it *rollout.OutboxItem) { it.Format = "" }},
		{"no alert id", func(it *rollout.OutboxItem) { it.Alert.ID = "" }},
		{"bad kind", func(it *rollout.OutboxItem) { it.Alert.Kind = "panic" }},
		{"newline in key", func(it *rollout.OutboxItem) { it.Key = "a\nb" }},
	} {
		bad := OutboxItem("k/bad", T0)
		tc.mod(&bad)
		_, err := s.Enqueue(ctx(t), []rollout.OutboxItem{good, bad})
		wantErr(t, tc.name, err, rollout.ErrInvalid)
	}
	if got := allOutbox(t, s, rollout.OutboxFilter{}); len(got) != 0 {
		t.Errorf("refused batches stored %v, want nothing (all or none)", keys(got))
	}
	_, err := s.Claim(ctx(t), "", T0, time.Minute, 1)
	wantErr(t, "Claim without holder", err, rollout.ErrInvalid)
	_, err = s.Claim(ctx(t), "h", T0, 0, 1)
	wantErr(t, "Claim without lease", err, rollout.ErrInvalid)
	_, err = s.Claim(ctx(t), "h", T0, time.Minute, 0)
	wantErr(t, "Claim without limit", err, rollout.ErrInvalid)
}

func testOutboxClaim(t *testing.T, s rollout.OutboxStore) {
	var items []rollout.OutboxItem
	for i := range 4 {
		it := OutboxItem(fmt.Sprintf("k/%d", i), T0)
		// Due in reverse order of insertion: k/3 first.
		it.NextAttemptAt = T0.Add(time.Duration(3-i) * time.Second)
		items = append(items, it)
	}
	later := OutboxItem("k/later", T0)
	later.NextAttemptAt = T0.Add(time.Hour)
	_, err := s.Enqueue(ctx(t), append(items, later))
	must(t, err)

	now := T0.Add(10 * time.Second)
	got, err := s.Claim(ctx(t), "a", now, time.Minute, 3)
	must(t, err)
	if diff := cmp.Diff([]string{"k/3", "k/2", "k/1"}, keys(got)); diff != "" {
		t.Errorf("first Claim (-want +got):\n%s", diff)
	}
	for _, it := range got {
		if it.ClaimedBy != "a" || !it.ClaimedUntil.Equal(now.Add(time.Minute)) || it.Attempts != 1 {
			t.Errorf("claimed %s: by %q until %v, attempts %d; want a, %v, 1", it.Key, it.ClaimedBy, it.ClaimedUntil, it.Attempts, now.Add(time.Minute))
		}
	}
	got, err = s.Claim(ctx(t), "b", now, time.Minute, 10)
	must(t, err)
	if diff := cmp.Diff([]string{"k/0"}, keys(got)); diff != "" {
		t.Errorf("second holder's Claim: only the unclaimed due item (-want +got):\n%s", diff)
	}
	got, err = s.Claim(ctx(t), "b", now.Add(59*time.Second), time.Minute, 10)
	must(t, err)
	if len(got) != 0 {
		t.Errorf("Claim while every due item is claimed returned %v", keys(got))
	}
	// Every claim expires (a and b crashed mid-send): b takes a's over
	// and its own again, and the later item is still not due.
	got, err = s.Claim(ctx(t), "b", now.Add(time.Minute), time.Minute, 10)
	must(t, err)
	if diff := cmp.Diff([]string{"k/3", "k/2", "k/1", "k/0"}, keys(got)); diff != "" {
		t.Errorf("Claim after a's lease expired (-want +got):\n%s", diff)
	}
	for _, it := range got {
		if it.ClaimedBy != "b" || it.Attempts != 2 {
			t.Errorf("reclaimed %s: by %q, attempts %d; want b, 2", it.Key, it.ClaimedBy, it.Attempts)
		}
	}
	err = s.Fail(ctx(t), got[0].ID, "a", "late", now)
	wantErr(t, "Fail by the holder whose claim was taken", err, rollout.ErrConflict)
}

func testOutboxAckFail(t *testing.T, s rollout.OutboxStore) {
	_, err := s.Enqueue(ctx(t), []rollout.OutboxItem{OutboxItem("k/ack", T0), OutboxItem("k/fail", T0)})
	must(t, err)
	got, err := s.Claim(ctx(t), "a", T0, time.Minute, 10)
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("Claim: %v, want both items", keys(got))
	}
	ack, fail := got[0], got[1]

	must(t, s.Ack(ctx(t), ack.ID, T0.Add(time.Second)))
	must(t, s.Ack(ctx(t), ack.ID, T0.Add(time.Hour))) // idempotent: the first time stays
	must(t, s.Fail(ctx(t), fail.ID, "a", "POST: 503 Service Unavailable", T0.Add(30*time.Second)))
	wantErr(t, "Fail of a delivered item", s.Fail(ctx(t), ack.ID, "a", "x", T0), rollout.ErrConflict)
	wantErr(t, "second Fail after the claim was released", s.Fail(ctx(t), fail.ID, "a", "x", T0), rollout.ErrConflict)
	wantErr(t, "Ack of a missing item", s.Ack(ctx(t), 1<<40, T0), rollout.ErrNotFound)
	wantErr(t, "Fail of a missing item", s.Fail(ctx(t), 1<<40, "a", "x", T0), rollout.ErrNotFound)

	byKey := map[string]rollout.OutboxItem{}
	for _, it := range allOutbox(t, s, rollout.OutboxFilter{}) {
		byKey[it.Key] = it
	}
	if it := byKey["k/ack"]; !it.Delivered() || !it.DeliveredAt.Equal(T0.Add(time.Second)) || it.ClaimedBy != "" {
		t.Errorf("acked item: delivered at %v, claimed by %q; want %v, none", it.DeliveredAt, it.ClaimedBy, T0.Add(time.Second))
	}
	it := byKey["k/fail"]
	if it.Delivered() || it.LastError != "POST: 503 Service Unavailable" || !it.NextAttemptAt.Equal(T0.Add(30*time.Second)) ||
		it.ClaimedBy != "" || !it.ClaimedUntil.IsZero() || it.Attempts != 1 {
		t.Errorf("failed item = %+v; want undelivered, its error, next attempt at T0+30s, unclaimed, 1 attempt", it)
	}
	if got := allOutbox(t, s, rollout.OutboxFilter{Undelivered: true}); len(got) != 1 || got[0].Key != "k/fail" {
		t.Errorf("undelivered items = %v, want [k/fail]", keys(got))
	}

	// The backoff holds the failed item back; the delivered one never returns.
	got, err = s.Claim(ctx(t), "a", T0.Add(29*time.Second), time.Minute, 10)
	must(t, err)
	if len(got) != 0 {
		t.Errorf("Claim before the next attempt returned %v", keys(got))
	}
	got, err = s.Claim(ctx(t), "b", T0.Add(30*time.Second), time.Minute, 10)
	must(t, err)
	if len(got) != 1 || got[0].Key != "k/fail" || got[0].Attempts != 2 || got[0].LastError == "" {
		t.Errorf("Claim at the next attempt = %+v, want k/fail on its second attempt with its last error", got)
	}
	// A late Ack by a holder whose claim expired still counts: the
	// receiver has the alert.
	must(t, s.Ack(ctx(t), got[0].ID, T0.Add(31*time.Second)))
	got, err = s.Claim(ctx(t), "b", T0.Add(time.Hour), time.Minute, 10)
	must(t, err)
	if len(got) != 0 {
		t.Errorf("Claim after every item was acknowledged returned %v", keys(got))
	}
}

func testOutboxList(t *testing.T, s rollout.OutboxStore) {
	var items []rollout.OutboxItem
	for _, k := range []string{"rollout/r-1/rev/2/x", "rollout/r-10/rev/1/x", "rollout/r-1/rev/5/x", "report/sig/x"} {
		items = append(items, OutboxItem(k, T0))
	}
	_, err := s.Enqueue(ctx(t), items)
	must(t, err)
	got := keys(allOutbox(t, s, rollout.OutboxFilter{KeyPrefix: "rollout/r-1/"}))
	if diff := cmp.Diff([]string{"rollout/r-1/rev/5/x", "rollout/r-1/rev/2/x"}, got); diff != "" {
		t.Errorf("ListOutbox by key prefix (-want +got):\n%s", diff)
	}
	_, _, err = s.ListOutbox(ctx(t), rollout.OutboxFilter{}, rollout.Page{After: "!!"})
	wantErr(t, "ListOutbox with a bad cursor", err, rollout.ErrInvalid)
}

// testOutboxConcurrent has several claimers race over one outbox, as
// replicas' senders do: each item is claimed by exactly one of them.
func testOutboxConcurrent(t *testing.T, s rollout.OutboxStore) {
	const n, claimers = 60, 6
	var items []rollout.OutboxItem
	for i := range n {
		items = append(items, OutboxItem(fmt.Sprintf("k/%02d", i), T0))
	}
	_, err := s.Enqueue(ctx(t), items)
	must(t, err)
	var mu sync.Mutex
	claimedBy := map[string][]string{}
	var wg sync.WaitGroup
	for c := range claimers {
		holder := fmt.Sprint("h", c)
		wg.Go(func() {
			// Bounded, so a store that hands out claimed items fails
			// rather than spins.
			for range n {
				got, err := s.Claim(ctx(t), holder, T0, time.Minute, 4)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					claimedBy[it.Key] = append(claimedBy[it.Key], holder)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimedBy) != n {
		t.Errorf("%d of %d items claimed", len(claimedBy), n)
	}
	for k, hs := range claimedBy {
		if len(hs) != 1 {
			t.Errorf("%s claimed by %v, want exactly one holder", k, hs)
		}
	}
}
