package rollout

import "fmt"

// The refusals a Store reports when its database refuses a write or
// finds nothing, written once so that the stores agree on their kind
// (ErrNotFound, ErrConflict) and on their wording. A store detects the
// case with its own means (a constraint, a missing row) and returns one
// of these.

// ErrImageMissing: a version names an image that was never registered.
func ErrImageMissing(label string) error {
	return fmt.Errorf("image %s: %w: register the image first", label, ErrNotFound)
}

// ErrVersionMissing: a rollout or pin names a version that was never pushed.
func ErrVersionMissing(label, version string) error {
	return fmt.Errorf("version %s of %s: %w: push the version first", version, label, ErrNotFound)
}

// ErrNoVersion: the version asked for does not exist.
func ErrNoVersion(label, version string) error {
	return fmt.Errorf("version %s of %s: %w", version, label, ErrNotFound)
}

// ErrVersionExists: versions are immutable.
func ErrVersionExists(label, version string) error {
	return fmt.Errorf("%w: version %s of %s already exists", ErrConflict, version, label)
}

// ErrNoRings: neither label's ring plan nor the global one is set.
func ErrNoRings(label string) error {
	return fmt.Errorf("rings of %q: %w: neither the label nor the global plan is set", label, ErrNotFound)
}

// ErrNoRollout: the rollout asked for does not exist.
func ErrNoRollout(id string) error {
	return fmt.Errorf("rollout %s: %w", id, ErrNotFound)
}

// ErrRolloutExists: a rollout with this ID exists.
func ErrRolloutExists(id string) error {
	return fmt.Errorf("%w: rollout %s already exists", ErrConflict, id)
}

// ErrUnfinishedRollout: a new rollout of label while another is unfinished.
func ErrUnfinishedRollout(label string) error {
	return fmt.Errorf("%w: %s already has an unfinished rollout; supersede it or wait for it to end", ErrConflict, label)
}

// ErrAnotherUnfinished: an update would make a second unfinished rollout
// of label.
func ErrAnotherUnfinished(label string) error {
	return fmt.Errorf("%w: %s already has another unfinished rollout", ErrConflict, label)
}

// ErrStaleRevision: the rollout changed since the caller read it at read.
func ErrStaleRevision(id string, stored, read int64) error {
	return fmt.Errorf("%w: rollout %s is at revision %d, not %d: it changed meanwhile; read it again", ErrConflict, id, stored, read)
}

// ErrNoPin: org has no pin of label.
func ErrNoPin(org, label string) error {
	return fmt.Errorf("pin of %s by %s: %w", label, org, ErrNotFound)
}

// ErrTokenExists: a token with this ID or secret hash exists.
func ErrTokenExists() error {
	return fmt.Errorf("%w: a token with this id or secret exists", ErrConflict)
}

// ErrNoToken: no token has this hash.
func ErrNoToken() error {
	return fmt.Errorf("token: %w", ErrNotFound)
}

// ErrAuditExists: an audit entry with this ID exists.
func ErrAuditExists(id int64) error {
	return fmt.Errorf("audit entry %d: %w: it already exists", id, ErrConflict)
}

// ErrReportKeyReused: org sent idempotency key before with a different
// report, prev (ReportFingerprint differs).
func ErrReportKeyReused(org, key string, prev Report) error {
	return fmt.Errorf("report from %s: %w: Idempotency-Key %s came with a different report (report %d on %s); a new report needs a new key",
		org, ErrKeyReused, quote(key), prev.ID, prev.Label)
}

// ErrRunForgotten: a run assignment was dropped (ForgetRuns, a prune)
// while it was being read back.
func ErrRunForgotten(runID, label string) error {
	return fmt.Errorf("run %s of %s: %w: its assignment was dropped meanwhile", runID, label, ErrConflict)
}
