package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Re-verification: a version may carry the image reference it was built as
// (ImageRef); a worker (`imagegate verify`) pulls each live version by its
// digest, scans it with the recorded options and reports what it found
// (VerifyReport); Verifications compares that with the stored evidence.

// Verification results.
const (
	VerifyOK = "ok"
	// VerifyDrifted: the digest behind the recorded tag moved, or the image
	// no longer scans to the stored snapshot.
	VerifyDrifted = "drifted"
	// VerifyNewFindings: the image is what was pushed, but today's checks
	// fail on it where the stored report did not (the rules improved).
	VerifyNewFindings = "new-findings"
	// VerifyUnreachable: the worker could not pull or scan the image.
	VerifyUnreachable = "unreachable"
	// VerifyNever: live, but no worker has verified it yet (List only).
	VerifyNever = "never"
)

// Alert kinds of re-verification.
const (
	AlertDrift       = "drift"       // a live version's image drifted
	AlertUnreachable = "unreachable" // a live version's image could not be pulled twice in a row
)

// VerifyActor names re-verification's decisions in the audit log.
const VerifyActor = "system:verify"

// UnreachableAfter consecutive failed pulls raise an alert: one failure is
// often a registry blip.
const UnreachableAfter = 2

// ScanOptions are the scan options a version's snapshot was made with, so
// that re-verification scans the same way.
type ScanOptions struct {
	Exec          string        `json:"exec,omitempty"`     // auto, none, local, chroot
	Platform      string        `json:"platform,omitempty"` // e.g. linux/amd64
	ModuleTimeout time.Duration `json:"moduleTimeout,omitempty"`
	ToolTimeout   time.Duration `json:"toolTimeout,omitempty"`
}

// ImageRef is the image a version was built as.
type ImageRef struct {
	// Ref is the reference as given at push: "registry:HOST/REPO:TAG" or
	// "registry:HOST/REPO@sha256:…".
	Ref string `json:"ref"`
	// Repository is HOST/REPO.
	Repository string `json:"repository"`
	// Tag is the tag given at push, if any; re-verification checks that it
	// still points at Digest.
	Tag string `json:"tag,omitempty"`
	// Digest is the manifest digest the version was pushed with (for a tag,
	// the one it had at push time). Images are always pulled by it.
	Digest      string      `json:"digest"`
	ScanOptions ScanOptions `json:"scanOptions"`
	// DriftedAt is when re-verification first found the image drifted;
	// zero while it never did. Drift is the latest drift found.
	DriftedAt time.Time `json:"driftedAt,omitzero"`
	Drift     *Drift    `json:"drift,omitempty"`
}

// Pull is the SOURCE that pulls the image by its digest.
func (r ImageRef) Pull() string { return "registry:" + r.Repository + "@" + r.Digest }

// TagRef is HOST/REPO:TAG, "" without a tag.
func (r ImageRef) TagRef() string {
	if r.Tag == "" {
		return ""
	}
	return r.Repository + ":" + r.Tag
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// CheckImageRef refuses a reference re-verification could not pull.
func CheckImageRef(r ImageRef) error {
	switch {
	case r.Repository == "" || strings.ContainsAny(r.Repository, " \t\n@"):
		return fmt.Errorf("image reference %q: %w: want registry:HOST/REPO:TAG or registry:HOST/REPO@sha256:DIGEST", r.Ref, ErrInvalid)
	case !digestRE.MatchString(r.Digest):
		return fmt.Errorf("image reference %q: %w: digest %q is not sha256: and 64 hex digits", r.Ref, ErrInvalid, r.Digest)
	case strings.ContainsAny(r.Tag, " \t\n@:/"):
		return fmt.Errorf("image reference %q: %w: tag %q", r.Ref, ErrInvalid, r.Tag)
	}
	return nil
}

// Drift is why a version no longer matches what was pushed.
type Drift struct {
	// Reasons are one line each, e.g. "tag reg/app:v1 moved from sha256:… to
	// sha256:…" or "the image scans to 3 changes from the stored snapshot".
	Reasons []string `json:"reasons"`
	// TagDigest is what the tag points at now, when it moved.
	TagDigest string `json:"tagDigest,omitempty"`
	// Diff is the imagegate/diff/v1 report of the stored snapshot against
	// today's scan, when they differ.
	Diff json.RawMessage `json:"diff,omitempty"`
}

// Finding is a check that fails on an image today and did not when it
// was pushed.
type Finding struct {
	ID      string `json:"id"`
	Message string `json:"message,omitempty"`
}

// Verification is the last re-verification of one live version.
type Verification struct {
	Label   string `json:"label"`
	Version string `json:"version"`
	// Live says why the version is verified: "default", "rollout" (the
	// version rolling out, or the one it replaces in rings not yet
	// reached), "pin:ORG".
	Live   []string `json:"live,omitempty"`
	Result string   `json:"result"`
	// Digest was pulled; TagDigest is what the recorded tag points at now.
	Digest    string    `json:"digest,omitempty"`
	TagDigest string    `json:"tagDigest,omitempty"`
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	// LastSuccessAt is the last time the image was pulled and scanned,
	// whatever that found.
	LastSuccessAt time.Time `json:"lastSuccessAt,omitzero"`
	// Failures counts consecutive unreachable results since FailingSince.
	Failures     int       `json:"failures"`
	FailingSince time.Time `json:"failingSince,omitzero"`
	Error        string    `json:"error,omitempty"`
	// Gate is today's check verdict on the image.
	Gate        string    `json:"gate,omitempty"`
	Drift       *Drift    `json:"drift,omitempty"`
	NewFindings []Finding `json:"newFindings,omitempty"`
	// PushedAt is when the version was registered (List fills it: the age
	// of a version never verified counts from it).
	PushedAt time.Time `json:"pushedAt,omitzero"`
}

// VerifyTarget is one live version a worker should verify.
type VerifyTarget struct {
	Label   string   `json:"label"`
	Version string   `json:"version"`
	Live    []string `json:"live"`
	Image   ImageRef `json:"image"`
}

// VerifyReport is what a worker found for one target.
type VerifyReport struct {
	Label   string `json:"label"`
	Version string `json:"version"`
	// Digest is the digest pulled (the target's); TagDigest what the
	// target's tag points at now ("" without a tag).
	Digest    string `json:"digest"`
	TagDigest string `json:"tagDigest,omitempty"`
	// Snapshot and CheckReport are today's `imagegate scan` and
	// `imagegate check -o json` of the image, absent when Error is set.
	Snapshot    json.RawMessage `json:"snapshot,omitempty"`
	CheckReport json.RawMessage `json:"checkReport,omitempty"`
	// Error says why the image could not be pulled or scanned.
	Error string `json:"error,omitempty"`
}

// VerifyStore holds what re-verification knows per version. The image
// reference itself is written by VersionStore.CreateVersion with the
// version (Version.Image), so a version and its reference exist together.
//
// Contract as Store's; verifications are not routing and do not bump
// Generation.
type VerifyStore interface {
	// VersionImage returns the image reference label+version was pushed
	// with, its drift mark included; ErrNotFound when the version does not
	// exist or has none.
	VersionImage(ctx context.Context, label, version string) (ImageRef, error)
	// GetVerification returns label+version's last verification;
	// ErrNotFound when it was never verified.
	GetVerification(ctx context.Context, label, version string) (Verification, error)
	// PutVerification replaces label+version's last verification with v
	// (last write wins). With drift non-nil it also marks the version
	// drifted — DriftedAt set the first time and kept, Drift replaced —
	// and writes audit, all in one transaction. ErrNotFound when the
	// version has no image reference.
	PutVerification(ctx context.Context, v Verification, drift *Drift, audit AuditEntry) error
}

// PrepareVerification checks v and fills its defaults (CheckedAt now, in
// UTC), as every store's PutVerification does first.
func PrepareVerification(v Verification) (Verification, error) {
	if v.Label == "" || v.Version == "" {
		return v, fmt.Errorf("record verification: %w: label and version are required", ErrInvalid)
	}
	switch v.Result {
	case VerifyOK, VerifyDrifted, VerifyNewFindings, VerifyUnreachable:
	default:
		return v, fmt.Errorf("record verification of %s %s: %w: result %q is none of ok, drifted, new-findings, unreachable", v.Label, v.Version, ErrInvalid, v.Result)
	}
	if v.CheckedAt.IsZero() {
		v.CheckedAt = time.Now()
	}
	v.CheckedAt = v.CheckedAt.UTC().Truncate(time.Microsecond)
	return v, nil
}
