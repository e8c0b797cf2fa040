package runtimes_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/testenv"
)

var bookworm struct {
	once sync.Once
	dir  string
	err  error
}

// systemRootFS is Debian 12 minbase with ca-certificates, curl and python3,
// unpacked once per test binary and linked (cp -al) into a fresh tree per
// fixture; regression then removes what an image build that "slims" the
// image removes: "ca bundle" every file in /etc/ssl/certs (the package
// stays installed), "zoneinfo" /usr/share/zoneinfo (/etc/localtime still
// points into it).
func systemRootFS(tb testing.TB, regression string) string {
	tb.Helper()
	tarball := testenv.DebianRootfs(tb, "bookworm", "ca-certificates", "curl", "python3")
	bookworm.once.Do(func() {
		bookworm.dir, bookworm.err = os.MkdirTemp("", "imagegate-bookworm-")
		if bookworm.err == nil {
			if b, err := exec.Command("tar", "-C", bookworm.dir, "--numeric-owner", "--exclude=./dev/*", "-xf", tarball).CombinedOutput(); err != nil {
				bookworm.err = &fixtureError{cmd: "tar -x " + tarball, out: string(b), err: err}
			}
		}
		fixtures.cleanup = append(fixtures.cleanup, bookworm.dir)
	})
	if bookworm.err != nil {
		tb.Fatal(bookworm.err)
	}
	root := filepath.Join(tb.TempDir(), "root")
	mustRun(tb, "cp", "-al", bookworm.dir, root)
	var remove []string
	switch regression {
	case "ca bundle":
		remove, _ = filepath.Glob(filepath.Join(root, "etc/ssl/certs/*"))
	case "zoneinfo":
		remove = []string{filepath.Join(root, "usr/share/zoneinfo")}
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

func TestSystemDebian(t *testing.T) {
	for _, tc := range []struct {
		regression string
		bad        []string
		wantErr    string
	}{
		{regression: ""},
		{regression: "ca bundle", bad: []string{"ca-certificates missing"}, wantErr: "no CA bundle at /etc/ssl/certs/ca-certificates.crt"},
		{regression: "zoneinfo", bad: []string{"tzdata missing"}, wantErr: "no time zone data for Etc/UTC, Europe/London, America/New_York in /usr/share/zoneinfo (tzdata)"},
	} {
		for _, mode := range modes() {
			t.Run("bookworm "+tc.regression+"/"+mode.name, func(t *testing.T) {
				rs, warnings := collectRootFS(t, systemRootFS(t, tc.regression), mode.execute)
				if len(warnings) > 0 {
					t.Errorf("warnings: %q", warnings)
				}
				r := onlyRuntime(t, rs, runtimes.KindSystem)
				want := map[string]string{"ca-certificates": "ok", "curl": "ok", "locale": "ok", "tzdata": "ok"}
				for _, b := range tc.bad {
					name, status, _ := strings.Cut(b, " ")
					want[name] = status
				}
				if diff := cmp.Diff(want, statuses(r)); diff != "" {
					t.Errorf("system parts (-want +got):\n%s", diff)
				}
				if tc.regression != "" {
					name, _, _ := strings.Cut(tc.bad[0], " ")
					if m := module(t, r, name); !strings.Contains(m.Error, tc.wantErr) {
						t.Errorf("%s error %q, want %q", name, m.Error, tc.wantErr)
					}
				}
				// Debian minbase's perl-base: the core modules it ships load.
				p := onlyRuntime(t, rs, runtimes.KindPerl)
				for _, m := range p.Modules {
					if m.Status != snapshot.StatusOK {
						t.Errorf("perl-base %s: %s %s", m.Name, m.Status, m.Error)
					}
				}
				if len(p.Modules) < 30 {
					t.Errorf("perl-base: %d core modules", len(p.Modules))
				}
			})
		}
	}
}

func TestSystemGate(t *testing.T) {
	for _, tc := range []struct{ regression, part, status string }{
		{"ca bundle", "ca-certificates", snapshot.StatusMissing},
		{"zoneinfo", "tzdata", snapshot.StatusMissing},
	} {
		mustGate(t, regression{name: tc.regression + " removed", wantID: "runtime/system@1/module/" + tc.part, wantStatus: tc.status, rootFS: true,
			goodRoot: func(tb testing.TB) string { return systemRootFS(tb, "") },
			badRoot:  func(tb testing.TB) string { return systemRootFS(tb, tc.regression) }})
	}
}
