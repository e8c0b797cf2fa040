package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
)

func testImages(t *testing.T, s rollout.Store) {
	for _, l := range []string{"b", "a", "c", "b"} {
		MustImage(t, s, l)
	}
	if n := len(allAudit(t, s)); n != 3 {
		t.Errorf("audit has %d entries after creating 3 images (one twice), want 3: a no-op writes none", n)
	}
	got, next, err := s.ListImages(ctx(t), rollout.Page{Limit: 2})
	must(t, err)
	want := []rollout.Image{{Label: "a", CreatedAt: T0}, {Label: "b", CreatedAt: T0}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("first page (-want +got):\n%s", d)
	}
	if next == "" {
		t.Fatal("first page of 3 images with limit 2 returned no cursor")
	}
	// Rows added before and after the cursor: the next page neither
	// repeats nor skips.
	MustImage(t, s, "aa")
	MustImage(t, s, "d")
	got, next, err = s.ListImages(ctx(t), rollout.Page{After: next, Limit: 2})
	must(t, err)
	want = []rollout.Image{{Label: "c", CreatedAt: T0}, {Label: "d", CreatedAt: T0}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("second page (-want +got):\n%s", d)
	}
	if next != "" {
		got, _, err := s.ListImages(ctx(t), rollout.Page{After: next, Limit: 2})
		if err != nil || len(got) != 0 {
			t.Errorf("page after the last: %v, %v; want nothing", got, err)
		}
	}
	wantErr(t, "PutImage with empty label", s.PutImage(ctx(t), rollout.Image{}, Audit("image.create", "image/")), rollout.ErrInvalid)
}
