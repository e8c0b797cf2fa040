package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
)

// TestEventsBatchRefusedWhole: a batch with a bad event is a 400 naming
// the first bad event's index, and none of its events is stored.
func TestEventsBatchRefusedWhole(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.admin.SetRings(ctx, "", threeRings); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "v1", passReport)
	now := e.clock.Now()
	ok := func(i int) rollout.JobEvent {
		return rollout.JobEvent{JobID: fmt.Sprint("j", i), Org: "org-a", Label: label, Version: "v1", Pipeline: "org-a/app/ci.yml",
			Outcome: rollout.OutcomeSucceeded, StartedAt: now.Add(-time.Duration(i) * time.Minute), DurationMs: 5}
	}
	for _, tc := range []struct {
		name string
		bad  func(*rollout.JobEvent)
	}{
		{"unknown label", func(ev *rollout.JobEvent) { ev.Label = "no-such-image" }},
		{"year 9999", func(ev *rollout.JobEvent) { ev.StartedAt = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"six minutes ahead", func(ev *rollout.JobEvent) { ev.StartedAt = now.Add(6 * time.Minute) }},
		{"eight days old", func(ev *rollout.JobEvent) { ev.StartedAt = now.Add(-8 * 24 * time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := []rollout.JobEvent{ok(0), ok(1), ok(2), ok(3), ok(4)}
			tc.bad(&batch[3])
			tc.bad(&batch[4])
			_, err := e.runner.PostEvents(ctx, batch)
			var ae *apiclient.Error
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "invalid" {
				t.Fatalf("PostEvents = %v, want a 400 invalid", err)
			}
			if !strings.Contains(ae.Message, "event 3 ") {
				t.Errorf("message %q does not name event 3", ae.Message)
			}
		})
	}
	resp, err := e.runner.PostEvents(ctx, []rollout.JobEvent{ok(0), ok(1), ok(2)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.New != 3 {
		t.Errorf("after the refused batches, %d of 3 good events were new; want 3 (nothing stored)", resp.New)
	}
}

// TestTelemetryEndpoints reads a ring's telemetry and the signatures over
// HTTP.
func TestTelemetryEndpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.admin.SetRings(ctx, "", threeRings); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "v1", passReport)
	if _, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.admin, label, "v2", passReport)
	r, err := e.admin.StartRollout(ctx, api.StartRolloutRequest{Label: label, Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	e.tick(t, time.Second)
	org := orgsByRing(t, threeRings)[0]
	_, err = e.runner.PostEvents(ctx, []rollout.JobEvent{{JobID: "j1", Org: org, Label: label, Version: "v2", Pipeline: "p",
		Outcome: rollout.OutcomeFailed, StartedAt: e.clock.Now(), DurationMs: 5, ErrorText: "fatal: boom"}})
	if err != nil {
		t.Fatal(err)
	}
	var tel rollout.Telemetry
	getJSON(t, e.URL+"/api/v1/rollouts/"+r.ID+"/telemetry", &tel)
	if tel.RolloutID != r.ID || tel.Stage != 0 || !cmp.Equal(tel.Exposure[rollout.CohortNew],
		rollout.Exposure{Pipelines: 1, Orgs: 1, Jobs: 1, Failed: 1, FailedOrgs: 1, TopOrgFailed: []int64{1}}) {
		t.Errorf("telemetry of ring 0: %+v", tel)
	}
	// No signer is configured in this server: exposure only.
	if len(tel.Signatures) != 0 {
		t.Errorf("signatures without a signer: %+v", tel.Signatures)
	}
	var tel1 rollout.Telemetry
	getJSON(t, e.URL+"/api/v1/rollouts/"+r.ID+"/telemetry?ring=1", &tel1)
	if tel1.Stage != 1 || len(tel1.Exposure) != 0 {
		t.Errorf("telemetry of ring 1: %+v", tel1)
	}
	var sigs api.List[rollout.Signature]
	getJSON(t, e.URL+"/api/v1/images/"+label+"/signatures?version=v2", &sigs)
	if sigs.Items == nil {
		t.Errorf("signatures list has no items array")
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// FuzzDecodeEvents: any body is either refused as invalid or decodes to
// at most MaxEventBatch events that survive a JSON round trip.
func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(`{"events":[{"jobId":"j","org":"o","label":"l","version":"v","pipeline":"o/r/ci.yml","runId":"r1","outcome":"failed","startedAt":"2026-03-02T09:00:00Z","durationMs":5,"errorText":"E: x\n"}]}`))
	f.Add([]byte(`[{"jobId":"j","ring":2}]`))
	f.Add([]byte(`{"events":[],"extra":1}`))
	f.Add([]byte(`{"events":[{"startedAt":"9999-12-31T00:00:00Z","errorText":"\u0000\ud800"}]}`))
	f.Add([]byte(` [] `))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := server.DecodeEvents(body)
		if err != nil {
			if !errors.Is(err, rollout.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if len(evs) > rollout.MaxEventBatch {
			t.Fatalf("accepted %d events", len(evs))
		}
		b, err := json.Marshal(api.EventsRequest{Events: evs})
		if err != nil {
			t.Fatal(err)
		}
		again, err := server.DecodeEvents(b)
		if err != nil || len(again) != len(evs) {
			t.Fatalf("round trip of %s: %d events, %v", b, len(again), err)
		}
	})
}
