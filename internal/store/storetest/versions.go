package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

func testVersions(t *testing.T, s rollout.Store) {
	v1 := rollout.Version{
		Label: "img", Version: "v1", Gate: rollout.GateFail,
		Snapshot:    json.RawMessage(`{"schema":1}`),
		CheckReport: json.RawMessage(`{"verdict":"fail"}`),
		CreatedAt:   T0,
	}
	wantErr(t, "CreateVersion of an unknown image", s.CreateVersion(ctx(t), v1, Audit("version.push", "x")), rollout.ErrNotFound)
	MustImage(t, s, "img")
	must(t, s.CreateVersion(ctx(t), v1, Audit("version.push", "version/img/v1")))
	before := len(allAudit(t, s))
	wantErr(t, "CreateVersion twice", s.CreateVersion(ctx(t), v1, Audit("version.push", "version/img/v1")), rollout.ErrConflict)
	if after := len(allAudit(t, s)); after != before {
		t.Errorf("a failed CreateVersion wrote an audit entry (%d -> %d)", before, after)
	}
	MustVersion(t, s, "img", "v2")
	MustVersion(t, s, "img", "v3")
	MustVersion(t, s, "other", "v9")

	got, err := s.GetVersion(ctx(t), "img", "v1", true)
	must(t, err)
	if d := cmp.Diff(v1, got); d != "" {
		t.Errorf("GetVersion with blobs (-want +got):\n%s", d)
	}
	got, err = s.GetVersion(ctx(t), "img", "v1", false)
	must(t, err)
	bare := v1
	bare.Snapshot, bare.CheckReport = nil, nil
	if d := cmp.Diff(bare, got); d != "" {
		t.Errorf("GetVersion without blobs (-want +got):\n%s", d)
	}
	_, err = s.GetVersion(ctx(t), "img", "v4", false)
	wantErr(t, "GetVersion of a missing version", err, rollout.ErrNotFound)

	var names []string
	p := rollout.Page{Limit: 2}
	for pages := 0; ; pages++ {
		vs, next, err := s.ListVersions(ctx(t), "img", p)
		must(t, err)
		for _, v := range vs {
			if v.Snapshot != nil || v.CheckReport != nil {
				t.Errorf("ListVersions returned blobs for %s", v.Version)
			}
			names = append(names, v.Version)
		}
		if next == "" {
			break
		}
		if pages > 3 {
			t.Fatal("ListVersions never ends")
		}
		p.After = next
	}
	if d := cmp.Diff([]string{"v3", "v2", "v1"}, names); d != "" {
		t.Errorf("ListVersions newest first (-want +got):\n%s", d)
	}

	before = len(allAudit(t, s))
	must(t, s.RevokeVersion(ctx(t), "img", "v2", "CVE-2026-1", Audit("version.revoke", "version/img/v2")))
	must(t, s.RevokeVersion(ctx(t), "img", "v2", "again", Audit("version.revoke", "version/img/v2")))
	if after := len(allAudit(t, s)); after != before+1 {
		t.Errorf("revoking twice wrote %d audit entries, want 1", after-before)
	}
	got, err = s.GetVersion(ctx(t), "img", "v2", false)
	must(t, err)
	if !got.Revoked || got.RevokedReason != "CVE-2026-1" {
		t.Errorf("after revoke: revoked=%v reason=%q, want true and the first reason", got.Revoked, got.RevokedReason)
	}
	wantErr(t, "RevokeVersion of a missing version",
		s.RevokeVersion(ctx(t), "img", "nope", "x", Audit("version.revoke", "version/img/nope")), rollout.ErrNotFound)
}

func testRings(t *testing.T, s rollout.Store) {
	_, err := s.GetRings(ctx(t), "img")
	wantErr(t, "GetRings with no plan", err, rollout.ErrNotFound)
	global := []rollout.Ring{
		{Name: "canary", Orgs: []string{"org-a", "org-b"}, BakeTime: time.Hour, MinJobs: 10, ManualApproval: true},
		{Name: "early", Percent: 10, BakeTime: 2 * time.Hour, ControlPercent: 5},
		{Name: "all", Percent: 100},
	}
	own := []rollout.Ring{{Name: "only", Percent: 100, BakeTime: time.Minute}}
	must(t, s.PutRings(ctx(t), "", global, Audit("rings.set", "rings/")))
	must(t, s.PutRings(ctx(t), "img", own, Audit("rings.set", "rings/img")))
	for _, tc := range []struct {
		label string
		want  []rollout.Ring
	}{
		{"img", own},
		{"other", global},
		{"", global},
	} {
		got, err := s.GetRings(ctx(t), tc.label)
		must(t, err)
		if d := cmp.Diff(tc.want, got, equateEmpty); d != "" {
			t.Errorf("GetRings(%q) (-want +got):\n%s", tc.label, d)
		}
	}
	must(t, s.PutRings(ctx(t), "img", nil, Audit("rings.clear", "rings/img")))
	got, err := s.GetRings(ctx(t), "img")
	must(t, err)
	if d := cmp.Diff(global, got, equateEmpty); d != "" {
		t.Errorf("GetRings after clearing the label's plan (-want +got):\n%s", d)
	}
}
