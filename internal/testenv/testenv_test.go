package testenv_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/testenv"
)

// recorder is a testing.TB that records what Require asks of it instead of
// ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestRequire(t *testing.T) {
	tests := []struct {
		name  string
		ci    string
		ok    bool
		wantS string
		wantF string
	}{
		{"present", "true", true, "", ""},
		{"missing skips", "", false, "gcc not installed", ""},
		{"missing skips unless CI is exactly true", "1", false, "gcc not installed", ""},
		{"missing fails under CI", "true", false, "", "gcc not installed (CI=true: not skipping)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			testenv.Require(r, tt.ok, "%s not installed", "gcc")
			if diff := cmp.Diff([2]string{tt.wantS, tt.wantF}, [2]string{r.skipped, r.failed}); diff != "" {
				t.Errorf("[skipped, failed] (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRequirePython finds this machine's builds (the brief promises 2.7 and
// 3.6 to 3.13) by exact and by minor version, and refuses one it lacks.
func TestRequirePython(t *testing.T) {
	for _, v := range []string{"2.7", "3.6", "3.11", "3.12.1", "3.13"} {
		home := testenv.RequirePython(t, v)
		if b := filepath.Base(home); b != v && !strings.HasPrefix(b, v+".") {
			t.Errorf("RequirePython(%s) = %s", v, home)
		}
	}
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	testenv.RequirePython(r, "1.5")
	if !strings.HasPrefix(r.skipped, "no CPython 1.5 build: ") || r.failed != "" {
		t.Errorf("RequirePython(1.5): skipped %q, failed %q", r.skipped, r.failed)
	}
}

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := testenv.NewClock(t0)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { c.Advance(time.Minute); _ = c.Now() })
	}
	wg.Wait()
	if got, want := c.Now(), t0.Add(10*time.Minute); !got.Equal(want) {
		t.Errorf("Now() = %v, want %v", got, want)
	}
}

// TestRequireChromium: an IMAGEGATE_CHROMIUM that is there is returned;
// one that is not skips, or fails under CI=true.
func TestRequireChromium(t *testing.T) {
	there := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(there, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, ci string
		want           string
		skipped, fails bool
	}{
		{"present", there, "true", there, false, false},
		{"missing skips", there + "-not", "", "", true, false},
		{"missing fails under CI", there + "-not", "true", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			t.Setenv("IMAGEGATE_CHROMIUM", tt.path)
			r := &recorder{TB: t}
			got := testenv.RequireChromium(r)
			if diff := cmp.Diff([3]any{tt.want, tt.skipped, tt.fails}, [3]any{got, r.skipped != "", r.failed != ""}); diff != "" {
				t.Errorf("[path, skipped, failed] (-want +got):\n%s", diff)
			}
		})
	}
}
