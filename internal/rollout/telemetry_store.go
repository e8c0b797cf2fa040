package rollout

import (
	"context"
	"fmt"
	"time"
)

// TelemetryStore keeps job events as the server read them, and the
// aggregates the analysis reads instead of the events.
//
// Contract (besides Store's): AppendObservations writes the events and
// every aggregate in one durable transaction, and only events whose JobID
// was not stored before contribute to aggregates, so a retried or
// overlapping batch never counts twice — also when two replicas append
// the same events at once. Distinct counts (pipelines, orgs) are exact.
// Readers never scan events: cost depends on the number of aggregates
// (cohorts, signatures), not of events.
//
// Stage history: the store records, in the same transaction as the
// rollout's write, every ring a rollout enters and when (Rollout.Ring
// and RingStartedAt as written by CreateRollout and UpdateRollout), so
// that an event can be placed in the ring its rollout was in when the job
// started. Stages of rollouts written before the store kept them are
// known from their current ring only.
type TelemetryStore interface {
	// AppendObservations stores the events of obs (idempotent on JobID,
	// like AppendEvents) and their aggregates; returns how many were new.
	// ErrInvalid for an observation without JobID. An observation with a
	// PreviousSignature records it as an alias of its Signature; one
	// reported under an aliased id is counted under the surviving id.
	// Concurrent calls may share one transaction; each is durable when it
	// returns.
	AppendObservations(ctx context.Context, obs []Observation) (int, error)
	// RolloutStages returns the rings rollout id entered, in order; empty
	// for a rollout still pending or unknown.
	RolloutStages(ctx context.Context, rolloutID string) ([]Stage, error)
	// RingTelemetry returns the aggregates of rollout id while it was in
	// ring stage; ErrNotFound when the rollout does not exist. A stage
	// without events gives empty exposure and no signatures. An aliased
	// id's counts are summed into its surviving id (distinct counts
	// included, so a pipeline under both counts twice).
	RingTelemetry(ctx context.Context, rolloutID string, stage int) (Telemetry, error)
	// ListSignatures lists the signatures seen on label (of version, when
	// not ""), by version and id, aliased ids summed into their
	// surviving id.
	ListSignatures(ctx context.Context, label, version string, p Page) ([]Signature, string, error)
	// SignatureHours returns the failed jobs of label's signatures keys
	// (version and surviving id; an aliased id's jobs count as its
	// survivor's) per UTC hour from the hour holding since on, ordered by
	// key and hour; hours without jobs are left out.
	SignatureHours(ctx context.Context, label string, keys []SignatureKey, since time.Time) ([]SignatureHour, error)
	// RingHours returns the jobs and failed jobs of rollout id's ring
	// stage per cohort and UTC hour of their start (jobs with a pipeline,
	// as Exposure counts them), ordered by hour and cohort; hours without
	// jobs are left out, and an unknown rollout or stage has none. Like
	// every reader it reads aggregates, never events.
	RingHours(ctx context.Context, rolloutID string, stage int) ([]RingHour, error)
	// SignatureTemplates returns the templates of the signatures last seen
	// (on any label and version) at or after since, in no particular
	// order: what a restarted miner is seeded with.
	SignatureTemplates(ctx context.Context, since time.Time) ([]string, error)
}

// CheckObservations refuses a batch in which an observation has no job ID
// or a cohort that is not one of the Cohort* values.
func CheckObservations(obs []Observation) error {
	for i := range obs {
		o := &obs[i]
		if o.JobID == "" {
			return fmt.Errorf("append observations: %w: event %d has no jobId", ErrInvalid, i)
		}
		switch o.Cohort {
		case "", CohortNew, CohortControl, CohortOld, CohortFlagged:
		default:
			return fmt.Errorf("append observations: %w: event %d has cohort %q", ErrInvalid, i, o.Cohort)
		}
		if o.Cohort != "" && o.RolloutID == "" {
			return fmt.Errorf("append observations: %w: event %d has cohort %q but no rollout", ErrInvalid, i, o.Cohort)
		}
	}
	return nil
}

// SignatureKey names a signature of a label's version.
type SignatureKey struct{ Version, ID string }

// SignatureHour is a signature's failed jobs in one UTC hour.
type SignatureHour struct {
	SignatureKey
	Hour time.Time
	Jobs int64
}

// RingHour is a ring cohort's jobs in one UTC hour.
type RingHour struct {
	Cohort       string
	Hour         time.Time
	Jobs, Failed int64
}
