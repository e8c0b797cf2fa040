package rollout

import (
	"context"
	"fmt"
)

// MaxEventBatch bounds one IngestEvents call.
const MaxEventBatch = 10_000

// IngestEvents validates a batch of job events and stores it durably;
// events already stored (same JobID) are ignored. Returns how many were
// new. One invalid event rejects the batch (ErrInvalid), naming it.
// The server decides what each event means (see ingestEvents).
func (s *Service) IngestEvents(ctx context.Context, events []JobEvent) (int, error) {
	return s.ingestEvents(ctx, events)
}

func checkEvent(e JobEvent) error {
	if err := CheckKey("jobId", e.JobID, MaxKey); err != nil {
		return err
	}
	for _, c := range [][2]string{{"org", e.Org}, {"label", e.Label}, {"version", e.Version}} {
		if err := CheckName(c[0], c[1]); err != nil {
			return err
		}
	}
	if e.Pipeline != "" {
		if err := CheckKey("pipeline", e.Pipeline, MaxPipeline); err != nil {
			return err
		}
	}
	if e.RunID != "" {
		if err := CheckKey("runId", e.RunID, MaxKey); err != nil {
			return err
		}
	}
	if err := CheckLog("errorText", e.ErrorText, MaxErrorTextIn); err != nil {
		return err
	}
	switch {
	case e.Outcome != OutcomeSucceeded && e.Outcome != OutcomeFailed && e.Outcome != OutcomeCanceled:
		return fmt.Errorf("outcome %q is not succeeded, failed or canceled: %w", e.Outcome, ErrInvalid)
	case e.StartedAt.IsZero():
		return fmt.Errorf("startedAt is required: %w", ErrInvalid)
	case e.DurationMs < 0:
		return fmt.Errorf("durationMs %d is negative: %w", e.DurationMs, ErrInvalid)
	case e.Ring < -1:
		return fmt.Errorf("ring %d: use the ring from the resolve answer (-1 when none): %w", e.Ring, ErrInvalid)
	}
	return nil
}
