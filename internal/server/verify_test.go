package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// TestVerificationEndpoints: targets are the live versions with an image
// reference; a worker's error is unreachable; the age gauge counts from
// the push until a verification succeeds.
func TestVerificationEndpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := &rollout.ImageRef{Ref: "registry:reg.example/app@sha256:" + strings.Repeat("a", 64), Repository: "reg.example/app",
		Digest: "sha256:" + strings.Repeat("a", 64), ScanOptions: rollout.ScanOptions{Exec: "none"}}
	for _, v := range []string{"v1", "v2"} {
		req := api.PushVersionRequest{Version: v, Snapshot: []byte(`{"schemaVersion":1}`)}
		if v == "v1" {
			req.Image = img
		}
		if _, err := e.admin.PushVersion(ctx, label, req); err != nil {
			t.Fatal(err)
		}
	}
	bad := *img
	bad.Digest = "latest"
	if _, err := e.admin.PushVersion(ctx, label, api.PushVersionRequest{Version: "v3", Image: &bad}); !errors.Is(err, rollout.ErrInvalid) {
		t.Fatalf("push with digest %q: %v, want invalid", bad.Digest, err)
	}
	for _, v := range []string{"v1", "v2"} {
		if _, err := e.svc.SetPin(ctx, "token:t", rollout.Pin{Org: "org-" + v, Label: label, Version: v, Reason: "r", ExpiresAt: e.clock.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	targets, err := e.runner.VerifyTargets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 1 || targets[0].Version != "v1" || targets[0].Image.Pull() != "registry:reg.example/app@"+img.Digest {
		t.Fatalf("targets = %+v, want v1 alone (v2 has no --ref)", targets)
	}
	list, err := e.admin.Verifications(ctx, label)
	if err != nil || len(list.Items) != 2 || list.Items[0].Result != rollout.VerifyNever || list.Items[1].Error == "" {
		t.Fatalf("verifications before any = %+v, %v", list, err)
	}

	e.clock.Advance(time.Hour)
	if got := ageGauge(t, e.URL, "v1"); got != "3600" {
		t.Errorf("age of never-verified v1 = %s, want 3600 (since the push)", got)
	}
	if _, err := e.runner.RecordVerification(ctx, rollout.VerifyReport{Label: label, Version: "v2", Error: "x"}); !errors.Is(err, rollout.ErrNotFound) {
		t.Errorf("a result for v2, pushed without --ref: %v, want not found", err)
	}
	if _, err := e.runner.RecordVerification(ctx, rollout.VerifyReport{Label: label, Version: "v1", Digest: "sha256:" + strings.Repeat("b", 64), Error: "x"}); !errors.Is(err, rollout.ErrInvalid) {
		t.Errorf("a result for another digest: %v, want invalid", err)
	}
	v, err := e.runner.RecordVerification(ctx, rollout.VerifyReport{Label: label, Version: "v1", Digest: img.Digest, Error: "MANIFEST_UNKNOWN"})
	if err != nil || v.Result != rollout.VerifyUnreachable || v.Failures != 1 {
		t.Fatalf("unreachable result = %+v, %v", v, err)
	}
	if got := ageGauge(t, e.URL, "v1"); got != "3600" {
		t.Errorf("age after a failed verification = %s, want still 3600", got)
	}
	if _, err := e.admin.Verifications(ctx, ""); err != nil {
		t.Fatal(err)
	}
	org := e.org(t, "org-v1")
	if _, err := org.Verifications(ctx, ""); !errors.Is(err, rollout.ErrForbidden) {
		t.Errorf("an org reading verifications: %v, want forbidden", err)
	}
}

func ageGauge(t *testing.T, base, version string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`imagegate_verification_age_seconds\{label="` + label + `",version="` + version + `"\} (\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no age gauge for %s in /metrics:\n%s", version, b)
	}
	return string(m[1])
}
