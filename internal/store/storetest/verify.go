package storetest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

// RunVerify runs the VerifyStore contract (and CreateVersion's image
// reference) against stores made by open.
func RunVerify(t *testing.T, open func(t *testing.T) rollout.Store) {
	t.Run("VersionImage", func(t *testing.T) { testVersionImage(t, open(t)) })
	t.Run("Verifications", func(t *testing.T) { testVerifications(t, open(t)) })
}

// TestDigest is a well-formed digest made of one repeated hex digit.
func TestDigest(hex byte) string { return "sha256:" + strings.Repeat(string(hex), 64) }

func testImageRef() rollout.ImageRef {
	return rollout.ImageRef{Ref: "registry:reg.example/app:v1", Repository: "reg.example/app", Tag: "v1", Digest: TestDigest('a'),
		ScanOptions: rollout.ScanOptions{Exec: "none", Platform: "linux/amd64", ModuleTimeout: 3 * time.Second}}
}

func testVersionImage(t *testing.T, s rollout.Store) {
	MustImage(t, s, "img")
	img := testImageRef()
	must(t, s.CreateVersion(ctx(t), rollout.Version{Label: "img", Version: "v1", Gate: rollout.GatePass, Image: &img}, Audit("version.push", "version/img/v1")))
	MustVersion(t, s, "img", "v2")

	got, err := s.VersionImage(ctx(t), "img", "v1")
	must(t, err)
	if d := cmp.Diff(img, got); d != "" {
		t.Errorf("VersionImage (-pushed +read):\n%s", d)
	}
	_, err = s.VersionImage(ctx(t), "img", "v2")
	wantErr(t, "image of a version pushed without one", err, rollout.ErrNotFound)
	_, err = s.VersionImage(ctx(t), "img", "v9")
	wantErr(t, "image of a missing version", err, rollout.ErrNotFound)

	// A failed create (the version exists) leaves no second image behind.
	other := img
	other.Digest = TestDigest('b')
	err = s.CreateVersion(ctx(t), rollout.Version{Label: "img", Version: "v1", Gate: rollout.GatePass, Image: &other}, Audit("version.push", "version/img/v1"))
	wantErr(t, "create an existing version with another image", err, rollout.ErrConflict)
	got, err = s.VersionImage(ctx(t), "img", "v1")
	must(t, err)
	if got.Digest != img.Digest {
		t.Errorf("after a refused create the digest is %s, want the first %s", got.Digest, img.Digest)
	}
}

func testVerifications(t *testing.T, s rollout.Store) {
	MustImage(t, s, "img")
	img := testImageRef()
	must(t, s.CreateVersion(ctx(t), rollout.Version{Label: "img", Version: "v1", Gate: rollout.GatePass, Image: &img}, Audit("version.push", "version/img/v1")))
	MustVersion(t, s, "img", "bare")

	_, err := s.GetVerification(ctx(t), "img", "v1")
	wantErr(t, "never verified", err, rollout.ErrNotFound)
	err = s.PutVerification(ctx(t), rollout.Verification{Label: "img", Version: "bare", Result: rollout.VerifyOK, CheckedAt: T0}, nil, rollout.AuditEntry{})
	wantErr(t, "verification of a version without image", err, rollout.ErrNotFound)
	err = s.PutVerification(ctx(t), rollout.Verification{Label: "img", Version: "v1", Result: "fine"}, nil, rollout.AuditEntry{})
	wantErr(t, "unknown result", err, rollout.ErrInvalid)

	auditBefore := len(allAudit(t, s))
	gen0, err := s.Generation(ctx(t))
	must(t, err)
	ok := rollout.Verification{Label: "img", Version: "v1", Result: rollout.VerifyOK, Digest: img.Digest, CheckedAt: T0, LastSuccessAt: T0, Gate: rollout.GatePass}
	must(t, s.PutVerification(ctx(t), ok, nil, rollout.AuditEntry{}))
	got, err := s.GetVerification(ctx(t), "img", "v1")
	must(t, err)
	if d := cmp.Diff(ok, got); d != "" {
		t.Errorf("GetVerification (-put +got):\n%s", d)
	}
	if n := len(allAudit(t, s)); n != auditBefore {
		t.Errorf("a verification without drift wrote %d audit entries", n-auditBefore)
	}
	if gen, _ := s.Generation(ctx(t)); gen != gen0 {
		t.Errorf("a verification bumped Generation from %d to %d: it is not routing", gen0, gen)
	}

	// Drift: the result replaces the last one, the version is marked with
	// the first drift's time and the latest drift, with an audit entry.
	for i, at := range []time.Time{T0.Add(time.Hour), T0.Add(2 * time.Hour)} {
		drift := &rollout.Drift{Reasons: []string{"tag moved"}, TagDigest: TestDigest(byte('b' + i)), Diff: json.RawMessage(`{"schema":"imagegate/diff/v1"}`)}
		v := rollout.Verification{Label: "img", Version: "v1", Result: rollout.VerifyDrifted, Digest: img.Digest, CheckedAt: at, LastSuccessAt: at, Drift: drift}
		must(t, s.PutVerification(ctx(t), v, drift, Audit("version.drift", "version/img/v1")))
		got, err := s.GetVerification(ctx(t), "img", "v1")
		must(t, err)
		if d := cmp.Diff(v, got); d != "" {
			t.Errorf("drift %d: GetVerification (-put +got):\n%s", i, d)
		}
		gotImg, err := s.VersionImage(ctx(t), "img", "v1")
		must(t, err)
		if !gotImg.DriftedAt.Equal(T0.Add(time.Hour)) {
			t.Errorf("drift %d: DriftedAt = %v, want the first drift's %v", i, gotImg.DriftedAt, T0.Add(time.Hour))
		}
		if d := cmp.Diff(drift, gotImg.Drift); d != "" {
			t.Errorf("drift %d: the version's Drift (-put +read):\n%s", i, d)
		}
	}
	audit := allAudit(t, s)
	if n := len(audit) - auditBefore; n != 2 {
		t.Fatalf("two drifts wrote %d audit entries, want 2", n)
	}
	if audit[0].Action != "version.drift" || audit[0].Subject != "version/img/v1" {
		t.Errorf("newest audit entry = %s %s, want version.drift version/img/v1", audit[0].Action, audit[0].Subject)
	}
}
