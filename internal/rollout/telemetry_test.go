package rollout_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

func TestCutErrorText(t *testing.T) {
	long := strings.Repeat("x", 30)
	for _, tc := range []struct {
		name, in, want string
		max            int
	}{
		{"short", "a\nb\n", "a\nb\n", 10},
		{"whole lines from the end", "first line\nsecond\nthird\n", "second\nthird\n", 14},
		{"tail starts a line", "12345\n12345\n", "12345\n", 6},
		{"one long last line", "a\n" + long, long[20:], 10},
		{"long line ending in newline", long + "\n", long[21:] + "\n", 10},
		{"no cut inside a character", "ééééé", "éé", 5},
		{"NUL and invalid UTF-8 replaced", "a\x00b\xffc", "a\uFFFDb\uFFFDc", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rollout.CutErrorText(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("CutErrorText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if len(got) > tc.max {
				t.Errorf("kept %d bytes, more than %d", len(got), tc.max)
			}
		})
	}
}

// TestEventsFromTheFutureSatisfyNoGate: a runner posting events dated
// after the rollout began, before it began, cannot move the rollout. Before
// the server read startedAt against its own clock, events dated 9999
// posted ahead of time counted in every ring's window (jobs and failure
// rate alike).
func TestEventsFromTheFutureSatisfyNoGate(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{Health: rollout.FailureRateHealth{MaxFailureRate: 0.05, MinJobs: 3}})
	e.setup(label, threeRings())
	ev := func(id, version string, at time.Time) rollout.JobEvent {
		return rollout.JobEvent{JobID: id, Org: "org-internal", Label: label, Version: version, Pipeline: "p",
			Outcome: rollout.OutcomeSucceeded, StartedAt: at, DurationMs: 1}
	}
	_, err := e.svc.IngestEvents(e.ctx, []rollout.JobEvent{ev("far", "v2", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))})
	if !errors.Is(err, rollout.ErrInvalid) {
		t.Fatalf("event dated 9999: %v, want ErrInvalid", err)
	}
	// Within the clock skew allowed, but before the rollout exists.
	var early []rollout.JobEvent
	for i := range 10 {
		early = append(early, ev(fmt.Sprint("early-", i), "v2", e.clock.Now().Add(4*time.Minute)))
	}
	n, err := e.svc.IngestEvents(e.ctx, early)
	e.must(err)
	if n != 10 {
		t.Fatalf("stored %d early events, want 10", n)
	}
	e.clock.Advance(time.Minute)
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	e.clock.Advance(2 * time.Hour)
	e.tickTo(r.ID, rollout.StateBaking, 0) // the early events are not in ring 0's window
	e.jobsDone(label, "v2", 0, 3, 0)
	e.tickTo(r.ID, rollout.StateBaking, 1)
}

// TestTelemetryThroughService reads a ring's telemetry back through the
// Service, and refuses negative rings.
func TestTelemetryThroughService(t *testing.T) {
	e := newEnv(t, rollout.ServiceOptions{Signer: firstWordSigner{}})
	e.setup(label, threeRings())
	r := e.start(rollout.StartRequest{Label: label, Version: "v2"})
	e.tickTo(r.ID, rollout.StateBaking, 0)
	evs := []rollout.JobEvent{
		{JobID: "j1", Org: "org-internal", Label: label, Version: "v2", Pipeline: "p1", Outcome: rollout.OutcomeFailed,
			StartedAt: e.clock.Now(), ErrorText: "boom: it broke"},
		{JobID: "j2", Org: "org-dogfood", Label: label, Version: "v2", Pipeline: "p2", Outcome: rollout.OutcomeSucceeded,
			StartedAt: e.clock.Now()},
	}
	_, err := e.svc.IngestEvents(e.ctx, evs)
	e.must(err)
	got, err := e.svc.RingTelemetry(e.ctx, r.ID, 0)
	e.must(err)
	want := rollout.Telemetry{RolloutID: r.ID, Stage: 0,
		Exposure: map[string]rollout.Exposure{rollout.CohortNew: {Pipelines: 2, Orgs: 2, Jobs: 2, Failed: 1, FailedOrgs: 1, TopOrgFailed: []int64{1}}},
		Signatures: []rollout.RingSignature{{ID: "sig-boom:", Template: "boom: <*>", Examples: []string{"boom: it broke"},
			Cohorts: map[string]rollout.SignatureCounts{rollout.CohortNew: {Pipelines: 1, Orgs: 1, Jobs: 1,
				WithoutHistory: 1, OrgsWithoutHistory: 1, TopOrgs: []int64{1}}}, NewWithoutHistory: 1}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("RingTelemetry (-want +got):\n%s", d)
	}
	sigs, _, err := e.svc.Signatures(e.ctx, label, "", rollout.Page{})
	e.must(err)
	if len(sigs) != 1 || sigs[0].Version != "v2" || sigs[0].Jobs != 1 {
		t.Errorf("Signatures = %+v, want one of v2 with one job", sigs)
	}
	if _, err := e.svc.RingTelemetry(e.ctx, r.ID, -1); !errors.Is(err, rollout.ErrInvalid) {
		t.Errorf("RingTelemetry ring -1: %v, want ErrInvalid", err)
	}
}

// firstWordSigner stands in for the signature miner (another package):
// the signature is the text's first word.
type firstWordSigner struct{}

func (firstWordSigner) Sign(text string) (string, string) {
	w, _, _ := strings.Cut(text, " ")
	return "sig-" + w, w + " <*>"
}
