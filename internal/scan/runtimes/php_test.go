package runtimes_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
)

const debianPHPExt = "usr/lib/php/20220829"

var phpPriority = regexp.MustCompile(`(?m)^; priority=(\d+)`)

// phpRootFS is Debian's php8.2-cli with the extensions php8.2-common,
// -opcache and -readline ship, unpacked into a root filesystem and enabled
// as their postinst does (ucf copies each module's ini into
// mods-available, phpenmod links it into cli/conf.d at its priority);
// withoutSockets then deletes sockets.so, still named in conf.d, as an
// image build that prunes "unused" files does.
func phpRootFS(tb testing.TB, withoutSockets bool) string {
	tb.Helper()
	root := mustRootFS(tb, debs(tb, "php8.2-cli", "php8.2-common", "php8.2-opcache", "php8.2-readline", "php-common"),
		"usr/bin/php8.2", debianPHPExt+"/*.so")
	inis, _ := filepath.Glob(filepath.Join(root, "usr/share/php8.2-*/*/*.ini"))
	if len(inis) < 10 {
		tb.Fatalf("the PHP fixture has %d module ini files", len(inis))
	}
	avail := filepath.Join(root, "etc/php/8.2/mods-available")
	confd := filepath.Join(root, "etc/php/8.2/cli/conf.d")
	for _, d := range []string{avail, confd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for _, ini := range inis {
		data, err := os.ReadFile(ini)
		if err != nil {
			tb.Fatal(err)
		}
		m := phpPriority.FindSubmatch(data)
		if m == nil {
			tb.Fatalf("%s: no priority line", ini)
		}
		name := filepath.Base(ini)
		if err := os.WriteFile(filepath.Join(avail, name), data, 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Symlink("/etc/php/8.2/mods-available/"+name, filepath.Join(confd, string(m[1])+"-"+name)); err != nil {
			tb.Fatal(err)
		}
	}
	if withoutSockets {
		if err := os.Remove(filepath.Join(root, debianPHPExt, "sockets.so")); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

func TestPHPDebian(t *testing.T) {
	for _, strip := range []bool{false, true} {
		for _, mode := range modes() {
			t.Run(map[bool]string{false: "debian", true: "without sockets.so"}[strip]+"/"+mode.name, func(t *testing.T) {
				rs, warnings := collectRootFS(t, phpRootFS(t, strip), mode.execute)
				if len(warnings) > 0 {
					t.Errorf("warnings: %q", warnings)
				}
				r := onlyRuntime(t, rs, runtimes.KindPHP)
				if !strings.HasPrefix(r.Version, "8.2.") || r.Path != "/usr" || r.Executable != "/usr/bin/php8.2" {
					t.Errorf("runtime = %s %s at %s (%s), want PHP 8.2 at /usr (/usr/bin/php8.2)", r.Kind, r.Version, r.Path, r.Executable)
				}
				got := statuses(r)
				// The extensions conf.d asks for, and php itself; with
				// execution also what is compiled in.
				for _, name := range []string{"php", "ctype", "opcache", "readline", "pdo", "phar", "tokenizer", "ffi"} {
					if got[name] != snapshot.StatusOK {
						t.Errorf("%s is %q, want ok", name, got[name])
					}
				}
				if mode.execute {
					for _, name := range []string{"core", "date", "pcre", "openssl", "zlib", "standard", "spl"} {
						if got[name] != snapshot.StatusOK {
							t.Errorf("compiled-in %s is %q, want ok (php -m)", name, got[name])
						}
					}
				} else if _, ok := got["core"]; ok {
					t.Errorf("compiled-in modules listed without execution: %v", got)
				}
				var bad []string
				for _, m := range r.Modules {
					if m.Status != snapshot.StatusOK {
						bad = append(bad, m.Name+" "+m.Status)
					}
				}
				var wantBad []string
				if strip {
					wantBad = []string{"sockets broken"}
				}
				if diff := cmp.Diff(wantBad, bad); diff != "" {
					t.Errorf("parts not ok (-want +got):\n%s\nall: %v", diff, got)
				}
				if !strip {
					return
				}
				m := module(t, r, "sockets")
				t.Logf("sockets: %s", m.Error)
				so := "/" + debianPHPExt + "/sockets.so"
				want := "Unable to load dynamic library 'sockets.so' (tried: " + so + " (" + so + ": cannot open shared object file: No such file or directory), " + so + ".so ("
				if !strings.Contains(m.Error, want) {
					t.Errorf("sockets error %q, want PHP's %q", m.Error, want)
				}
				if wantPrefix := map[bool]string{false: "PHP Startup: ", true: "dl(): "}[mode.execute]; !strings.HasPrefix(m.Error, wantPrefix) {
					t.Errorf("sockets error %q: want it to start %q", m.Error, wantPrefix)
				}
			})
		}
	}
}

func TestPHPGate(t *testing.T) {
	mustGate(t, regression{name: "sockets.so deleted, still in conf.d", wantID: "runtime/php@8.2/module/sockets", wantStatus: snapshot.StatusBroken, rootFS: true,
		goodRoot: func(tb testing.TB) string { return phpRootFS(tb, false) },
		badRoot:  func(tb testing.TB) string { return phpRootFS(tb, true) }})
}

func TestParsePHPIni(t *testing.T) {
	exts, dir := runtimes.ParsePHPIni([]byte("; priority=20\n[PHP]\nextension=sockets.so\n zend_extension = \"opcache.so\" ; the cache\nextension=/opt/ext/x.so\n;extension=off.so\nextension_dir='/opt/ext'\nfoo=bar\n"), "/etc/php.ini")
	want := []runtimes.PHPExtension{
		{Name: "sockets", Value: "sockets.so", File: "/etc/php.ini"},
		{Name: "opcache", Value: "opcache.so", Zend: true, File: "/etc/php.ini"},
		{Name: "x", Value: "/opt/ext/x.so", File: "/etc/php.ini"},
	}
	if diff := cmp.Diff(want, exts); diff != "" || dir != "/opt/ext" {
		t.Errorf("ParsePHPIni (-want +got):\n%s\nextension_dir %q", diff, dir)
	}
}

func TestParsePHPBinary(t *testing.T) {
	data := []byte("\x00junk\x00/etc/php/8.2/cli\x00X-Powered-By: PHP/8.2.36\x00/usr/lib/php/20220829\x00/etc/php/8.2/cli/conf.d\x00")
	b, err := runtimes.ParsePHPBinary(data)
	want := runtimes.PHPBuild{Version: "8.2.36", ExtensionDir: "/usr/lib/php/20220829", ConfigPath: "/etc/php/8.2/cli", ScanDir: "/etc/php/8.2/cli/conf.d"}
	if diff := cmp.Diff(want, b); diff != "" || err != nil {
		t.Errorf("ParsePHPBinary (-want +got):\n%s (err %v)", diff, err)
	}
	if _, err := runtimes.ParsePHPBinary([]byte("#!/bin/sh\nexec php8.2 \"$@\"\n")); err == nil {
		t.Error("a wrapper script parsed as a php binary")
	}
}

func FuzzParsePHPIni(f *testing.F) {
	f.Add([]byte("extension=sockets.so\nzend_extension=\"opcache\"\nextension_dir=/x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		exts, _ := runtimes.ParsePHPIni(data, "f.ini")
		for _, e := range exts {
			if e.Name == "" && e.Value == "" {
				t.Errorf("empty extension from %q", data)
			}
		}
	})
}

func FuzzParsePHPBinary(f *testing.F) {
	f.Add([]byte("X-Powered-By: PHP/8.2.36\x00/usr/lib/php/20220829\x00/etc/php/conf.d\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if b, err := runtimes.ParsePHPBinary(data); err == nil {
			sensibleVersion(t, b.Version)
		}
	})
}
