package runtimes_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
)

const debianPerlArch = "usr/lib/x86_64-linux-gnu/perl/5.36.0"

// perlRootFS is Debian's full Perl 5.36 (perl-base, perl-modules-5.36,
// libperl5.36) unpacked into a root filesystem, then made worse as an
// image build that prunes files does: "GDBM_File.so" deletes that XS
// module's loadable object, "libdb" the Berkeley DB library DB_File.so
// links (so that it no longer resolves).
func perlRootFS(tb testing.TB, regression string) string {
	tb.Helper()
	root := mustRootFS(tb, debs(tb, "perl", "perl-base", "perl-modules-5.36", "libperl5.36"),
		"usr/bin/perl", debianPerlArch+"/auto/*/*.so", debianPerlArch+"/auto/*/*/*.so", debianPerlArch+"/auto/*/*/*/*.so", "usr/lib/x86_64-linux-gnu/perl-base/auto/*/*.so")
	var remove []string
	switch regression {
	case "GDBM_File.so":
		remove = []string{filepath.Join(root, debianPerlArch, "auto/GDBM_File/GDBM_File.so")}
	case "libdb":
		remove, _ = filepath.Glob(filepath.Join(root, "*/x86_64-linux-gnu/libdb-5.3.so"))
		more, _ := filepath.Glob(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libdb-5.3.so"))
		remove = append(remove, more...)
		if len(remove) == 0 {
			tb.Fatal("the Perl fixture has no libdb-5.3.so to remove")
		}
	}
	for _, p := range remove {
		if err := os.Remove(p); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

func TestPerlDebian(t *testing.T) {
	want, known := runtimes.ExpectedParts("perl", "5.36")
	if !known || len(want) < 300 {
		t.Fatalf("generated Perl 5.36 list: %d modules", len(want))
	}
	for _, tc := range []struct {
		regression string
		wantBad    []string // name status, and a part of the error
		wantErr    map[bool]string
	}{
		{regression: ""},
		{regression: "GDBM_File.so", wantBad: []string{"GDBM_File broken"},
			wantErr: map[bool]string{false: "Can't locate loadable object for module GDBM_File in @INC", true: "Can't locate loadable object for module GDBM_File in @INC (@INC contains: "}},
		{regression: "libdb", wantBad: []string{"DB_File broken"},
			wantErr: map[bool]string{
				false: "Can't load '/usr/lib/x86_64-linux-gnu/perl/5.36/auto/DB_File/DB_File.so' for module DB_File: libdb-5.3.so: cannot open shared object file: No such file or directory",
				true:  "for module DB_File: libdb-5.3.so: cannot open shared object file: No such file or directory"}},
	} {
		for _, mode := range modes() {
			t.Run("debian "+tc.regression+"/"+mode.name, func(t *testing.T) {
				rs, warnings := collectRootFS(t, perlRootFS(t, tc.regression), mode.execute)
				if len(warnings) > 0 {
					t.Errorf("warnings: %q", warnings)
				}
				r := onlyRuntime(t, rs, runtimes.KindPerl)
				if r.Version != "5.36.0" || r.Path != "/usr" {
					t.Errorf("runtime = perl %s at %s, want 5.36.0 at /usr", r.Version, r.Path)
				}
				// A full Debian Perl ships every module of the list.
				if len(r.Modules) != len(want) {
					t.Errorf("%d modules, want the %d of the generated list", len(r.Modules), len(want))
				}
				var bad []string
				for _, m := range r.Modules {
					if m.Status != snapshot.StatusOK {
						bad = append(bad, m.Name+" "+m.Status)
					}
				}
				if diff := cmp.Diff(tc.wantBad, bad); diff != "" {
					t.Errorf("modules not ok (-want +got):\n%s", diff)
				}
				if got := statuses(r); got["List::Util"] != snapshot.StatusOK || got["POSIX"] != snapshot.StatusOK {
					t.Errorf("XS modules of perl-base: List::Util %q, POSIX %q", got["List::Util"], got["POSIX"])
				}
				if tc.regression == "" {
					return
				}
				name, _, _ := strings.Cut(tc.wantBad[0], " ")
				m := module(t, r, name)
				t.Logf("%s: %s", name, m.Error)
				if !strings.Contains(m.Error, tc.wantErr[mode.execute]) {
					t.Errorf("%s error %q, want %q", name, m.Error, tc.wantErr[mode.execute])
				}
			})
		}
	}
}

func TestPerlGate(t *testing.T) {
	for _, tc := range []struct{ regression, part string }{{"GDBM_File.so", "GDBM_File"}, {"libdb", "DB_File"}} {
		mustGate(t, regression{name: tc.regression + " gone", wantID: "runtime/perl@5.36/module/" + tc.part, wantStatus: snapshot.StatusBroken, rootFS: true,
			goodRoot: func(tb testing.TB) string { return perlRootFS(tb, "") },
			badRoot:  func(tb testing.TB) string { return perlRootFS(tb, tc.regression) }})
	}
}

func TestParsePerlConfig(t *testing.T) {
	pm := []byte("our %Config = (\n    archlibexp => '/usr/lib/x86_64-linux-gnu/perl/5.36',\n    privlibexp => '/usr/share/perl/5.36',\n    sitearchexp => '/usr/local/lib/x86_64-linux-gnu/perl/5.36.0',\n    version => '5.36.0',\n);\n")
	heavy := []byte("vendorlibexp='/usr/share/perl5'\nversion='9.9.9'\n")
	c, err := runtimes.ParsePerlConfig(pm, heavy)
	want := runtimes.PerlConfig{Version: "5.36.0", Dirs: []string{"/usr/local/lib/x86_64-linux-gnu/perl/5.36.0", "/usr/share/perl5", "/usr/lib/x86_64-linux-gnu/perl/5.36", "/usr/share/perl/5.36"}}
	if diff := cmp.Diff(want, c); diff != "" || err != nil {
		t.Errorf("ParsePerlConfig (-want +got):\n%s (err %v)", diff, err)
	}
	if _, err := runtimes.ParsePerlConfig([]byte("archlibexp => '/x',\n")); err == nil {
		t.Error("a Config.pm without version parsed")
	}
}

func FuzzParsePerlConfig(f *testing.F) {
	f.Add([]byte("version => '5.36.0',\narchlibexp => '/usr/lib/perl5',\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := runtimes.ParsePerlConfig(data); err == nil {
			sensibleVersion(t, c.Version)
		}
	})
}
