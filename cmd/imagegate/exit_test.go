package main

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/source"
)

// TestExitCodes: the one table, as the client commands and the gate use
// it: refused 1, usage 2, unreachable or failing server 3.
func TestExitCodes(t *testing.T) {
	refused := func(status int, code string) error {
		return fmt.Errorf("rollout start: %w", &apiclient.Error{Status: status, Code: code, Message: "m"})
	}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"gate fails", errGateFailed, 1},
		{"not found", refused(404, api.CodeNotFound), 1},
		{"conflict", refused(409, api.CodeConflict), 1},
		{"idempotency key reused", refused(422, api.CodeKeyReused), 1},
		{"forbidden", refused(403, api.CodeForbidden), 1},
		{"precondition", refused(412, api.CodePrecondition), 1},
		{"invalid", refused(400, api.CodeInvalid), 1},
		{"unauthenticated", refused(401, api.CodeUnauthenticated), 1},
		{"internal error", refused(500, api.CodeInternal), 3},
		{"rate limited", refused(429, api.CodeRateLimited), 3},
		{"a proxy's 502", refused(502, "http"), 3},
		{"unreachable", fmt.Errorf("GET x: %w: connection refused", apiclient.ErrUnreachable), 3},
		{"usage", usageErrorf("--org is required"), 2},
		{"bad source", fmt.Errorf("x: %w", source.ErrBadSource), 2},
		{"anything else", errors.New("read snapshot: no such file"), 2},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
	// Every server kind of internal/api's table has its exit code here.
	for _, kind := range []error{rollout.ErrNotFound, rollout.ErrConflict, rollout.ErrKeyReused, rollout.ErrInvalid, rollout.ErrForbidden, rollout.ErrPrecondition, api.ErrUnauthenticated} {
		_, code := api.Classify(kind)
		if api.KindOf(code) != kind || exitCode(refused(400, code)) != exitFailed {
			t.Errorf("kind %v (code %s) is not refused (1)", kind, code)
		}
	}
}

func TestVersionOf(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/imagegate/imagegate", Version: "v0.3.1"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "130a3b0"}, {Key: "vcs.time", Value: "2026-12-01T21:00:00Z"},
			{Key: "vcs.modified", Value: "true"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"}}}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want toolVersion
	}{
		{"go install @v0.3.1 from a clone", info, true, toolVersion{Version: "v0.3.1", Commit: "130a3b0", Time: "2026-12-01T21:00:00Z", Modified: true, Go: "go1.26.0", Platform: "linux/amd64"}},
		{"go run", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, true, toolVersion{Version: "dev", Go: "go1.26.0"}},
		{"no build info", nil, false, toolVersion{Version: "dev"}},
	} {
		if d := cmp.Diff(tc.want, versionOf(tc.info, tc.ok)); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	var out bytes.Buffer
	if err := runVersion(versionOptions{}, versionOf(info, true), &out); err != nil {
		t.Fatal(err)
	}
	want := "version:    v0.3.1\ncommit:     130a3b0 (modified)\ncommitted:  2026-12-01T21:00:00Z\ngo:         go1.26.0\nplatform:   linux/amd64\n"
	if d := cmp.Diff(want, out.String()); d != "" {
		t.Errorf("imagegate version (-want +got):\n%s", d)
	}
	if err := runVersion(versionOptions{output: "yaml"}, toolVersion{}, &out); exitCode(err) != exitUsage {
		t.Errorf("-o yaml: %v, want a usage error", err)
	}
}
