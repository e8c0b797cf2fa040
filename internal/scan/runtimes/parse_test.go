package runtimes_test

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/snapshot"
)

func TestParseNodeHeader(t *testing.T) {
	host, err := os.ReadFile("/usr/include/node/node_version.h")
	if err != nil {
		t.Fatalf("this machine's Node.js headers: %v", err)
	}
	tests := []struct {
		name, in, want string
	}{
		{"this machine's header", string(host), firstSubmatch(t, `v(\S+)`, mustRun(t, "/usr/bin/node", "--version"))},
		{"written", header("20", "1", "0"), "20.1.0"},
		{"leading zeros", header("020", "01", "00"), "20.1.0"},
		{"patch missing", "#define NODE_MAJOR_VERSION 20\n#define NODE_MINOR_VERSION 1\n", ""},
		{"not a header", "hello", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runtimes.ParseNodeHeader([]byte(tc.in))
			if got != tc.want || (err != nil) != (tc.want == "") {
				t.Errorf("ParseNodeHeader = %q, %v; want %q", got, err, tc.want)
			}
			if tc.want == "" && !errors.Is(err, runtimes.ErrNoVersion) {
				t.Errorf("error %v is not ErrNoVersion", err)
			}
		})
	}
}

func TestParseJavaRelease(t *testing.T) {
	tests := []struct{ in, want string }{
		{"IMPLEMENTOR=\"Debian\"\nJAVA_VERSION=\"17.0.15\"\n", "17.0.15"},
		{"JAVA_VERSION='1.8.0_392'", "1.8.0_392"},
		{"  JAVA_VERSION = \"21\"  ", "21"},
		{"JAVA_VERSION_DATE=\"2025-04-15\"\n", ""},
		{"JAVA_VERSION=\"\"\n", ""},
		{"JAVA_VERSION=\"$(rm -rf /)\"\n", ""},
	}
	for _, tc := range tests {
		got, err := runtimes.ParseJavaRelease([]byte(tc.in))
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("ParseJavaRelease(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseGoVersionFile(t *testing.T) {
	host, err := os.ReadFile("/usr/local/go/VERSION")
	if err != nil {
		t.Fatalf("this machine's Go: %v", err)
	}
	tests := []struct{ in, want string }{
		{string(host), firstSubmatch(t, `go version go(\S+)`, mustRun(t, "/usr/local/go/bin/go", "version"))},
		{"go1.22rc1", "1.22rc1"},
		{"devel go1.23-abcdef Mon Jan 1\n", ""},
		{"1.21.0\n", ""},
	}
	for _, tc := range tests {
		got, err := runtimes.ParseGoVersionFile([]byte(tc.in))
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("ParseGoVersionFile(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParsePackageJSON(t *testing.T) {
	host, err := os.ReadFile("/usr/lib/node_modules/npm/package.json")
	if err != nil {
		t.Fatalf("this machine's npm: %v", err)
	}
	tests := []struct {
		in   string
		want snapshot.RuntimePackage
	}{
		{string(host), snapshot.RuntimePackage{Name: "npm", Version: strings.TrimSpace(mustRun(t, "/usr/bin/npm", "--version"))}},
		{`{"name":"@scope/x","version":"1.0.0-beta.1"}`, snapshot.RuntimePackage{Name: "@scope/x", Version: "1.0.0-beta.1"}},
		{`{"name":"x"}`, snapshot.RuntimePackage{}},
		{`{"name":1,"version":"1"}`, snapshot.RuntimePackage{}},
		{`[`, snapshot.RuntimePackage{}},
	}
	for _, tc := range tests {
		got, err := runtimes.ParsePackageJSON([]byte(tc.in))
		if diff := cmp.Diff(tc.want, got); diff != "" || (err != nil) != (tc.want.Name == "") {
			t.Errorf("ParsePackageJSON(%.40q): err %v, (-want +got):\n%s", tc.in, err, diff)
		}
	}
}

func TestParseRbConfig(t *testing.T) {
	debian := mustReadTestdata(t, "rbconfig-debian12-ruby3.1.rb")
	tests := []struct {
		name, in, file string
		want           runtimes.RbConfig
	}{{
		name: "Debian's, where it lies",
		in:   debian, file: "/usr/lib/x86_64-linux-gnu/ruby/3.1.0/rbconfig.rb",
		want: runtimes.RbConfig{Version: "3.1.2", Prefix: "/usr", BinDir: "/usr/bin", Executable: "/usr/bin/ruby3.1", RubyVersion: "3.1.0"},
	}, {
		name: "Debian's, moved: the build prefix applies",
		in:   debian, file: "/elsewhere/rbconfig.rb",
		want: runtimes.RbConfig{Version: "3.1.2", Prefix: "/usr", BinDir: "/usr/bin", Executable: "/usr/bin/ruby3.1", RubyVersion: "3.1.0"},
	}, {
		name: "relocatable tool cache build",
		in: `TOPDIR = File.dirname(__FILE__).chomp!("/lib/ruby/3.3.0/x86_64-linux")
  CONFIG["prefix"] = (TOPDIR || DESTDIR + "/opt/hostedtoolcache/Ruby/3.3.0/x64")
  CONFIG["MAJOR"] = "3"
  CONFIG["MINOR"] = "3"
  CONFIG["TEENY"] = "0"
  CONFIG["ruby_install_name"] = "$(RUBY_BASE_NAME)"
  CONFIG["RUBY_BASE_NAME"] = "ruby"
  CONFIG["exec_prefix"] = "$(prefix)"
  CONFIG["bindir"] = "$(exec_prefix)/bin"
`,
		file: "/x/lib/ruby/3.3.0/x86_64-linux/rbconfig.rb",
		want: runtimes.RbConfig{Version: "3.3.0", Prefix: "/x", BinDir: "/x/bin", Executable: "/x/bin/ruby"},
	}, {
		name: "self-referencing variables end",
		in:   `CONFIG["RUBY_PROGRAM_VERSION"] = "$(a)"` + "\n" + `CONFIG["a"] = "$(b)"` + "\n" + `CONFIG["b"] = "$(a)"`,
		file: "/rbconfig.rb",
	}, {
		name: "not rbconfig",
		in:   "puts 'hello'\n",
		file: "/rbconfig.rb",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runtimes.ParseRbConfig([]byte(tc.in), tc.file)
			if (err != nil) != (tc.want.Version == "") {
				t.Errorf("err = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseVersionOutput(t *testing.T) {
	tests := []struct{ kind, out, want string }{
		{"node", "v20.20.2\n", "20.20.2"},
		{"go", "go version go1.26.8 linux/amd64\n", "1.26.8"},
		{"java", "Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version \"17.0.15\" 2025-04-15\n", "17.0.15"},
		{"ruby", "ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]\n", "3.1.2"},
		{"node", "Segmentation fault\n", ""},
		{"dotnet-sdk", "8.0.100\n", ""},
	}
	for _, tc := range tests {
		got, err := runtimes.ParseVersionOutput(tc.kind, tc.out)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("ParseVersionOutput(%s, %q) = %q, %v; want %q", tc.kind, tc.out, got, err, tc.want)
		}
	}
}

// sensibleVersion is the invariant every parser keeps: a version is a short
// token without spaces or control characters.
func sensibleVersion(t *testing.T, v string) {
	t.Helper()
	if v == "" || len(v) > 200 || strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		t.Fatalf("version %q is not a version", v)
	}
}

func FuzzParseNodeHeader(f *testing.F) {
	f.Add([]byte(header("20", "1", "0")))
	if host, err := os.ReadFile("/usr/include/node/node_version.h"); err == nil {
		f.Add(host)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := runtimes.ParseNodeHeader(data); err == nil {
			sensibleVersion(t, v)
		}
	})
}

func FuzzParseJavaRelease(f *testing.F) {
	f.Add([]byte("JAVA_VERSION=\"17.0.15\"\n"))
	if host, err := os.ReadFile("/usr/lib/jvm/temurin-25-jdk-amd64/release"); err == nil {
		f.Add(host)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := runtimes.ParseJavaRelease(data); err == nil {
			sensibleVersion(t, v)
		}
	})
}

func FuzzParseGoVersionFile(f *testing.F) {
	f.Add([]byte("go1.26.8\ntime 2026-01-01T00:00:00Z\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := runtimes.ParseGoVersionFile(data); err == nil {
			sensibleVersion(t, v)
		}
	})
}

func FuzzParsePackageJSON(f *testing.F) {
	f.Add([]byte(`{"name":"npm","version":"9.6.4"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := runtimes.ParsePackageJSON(data)
		if err == nil && (p.Name == "" || p.Version == "") {
			t.Fatalf("no error but %+v", p)
		}
	})
}

func FuzzParseRbConfig(f *testing.F) {
	debian, err := os.ReadFile("testdata/rbconfig-debian12-ruby3.1.rb")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(debian, "/usr/lib/x86_64-linux-gnu/ruby/3.1.0/rbconfig.rb")
	f.Add([]byte(`CONFIG["RUBY_PROGRAM_VERSION"] = "$(MAJOR).$(MAJOR)"`+"\n"+`CONFIG["MAJOR"] = "$(MAJOR)$(MAJOR)"`), "/r.rb")
	f.Fuzz(func(t *testing.T, data []byte, file string) {
		c, err := runtimes.ParseRbConfig(data, file)
		if err != nil {
			return
		}
		sensibleVersion(t, c.Version)
		if c.Executable != "" && (!path.IsAbs(c.Executable) || path.Clean(c.Executable) != c.Executable) {
			t.Fatalf("executable %q is not a clean absolute path", c.Executable)
		}
	})
}

func FuzzParseVersionOutput(f *testing.F) {
	for _, s := range []struct{ kind, out string }{
		{"node", "v20.20.2\n"},
		{"go", "go version go1.26.8 linux/amd64\n"},
		{"java", "openjdk version \"17.0.15\" 2025-04-15\n"},
		{"ruby", "ruby 3.1.2p20 (2022-04-12)\n"},
	} {
		f.Add(s.kind, s.out)
	}
	f.Fuzz(func(t *testing.T, kind, out string) {
		v, err := runtimes.ParseVersionOutput(kind, out)
		if err != nil {
			return
		}
		if v == "" || !strings.Contains(out, v) {
			t.Fatalf("version %q is not in the output", v)
		}
	})
}

// A hostile rbconfig.rb whose variables refer to each other many times over
// must not blow up (each expansion would otherwise quadruple).
func TestParseRbConfigExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`CONFIG["RUBY_PROGRAM_VERSION"] = "3.1.2"` + "\n")
	b.WriteString(`CONFIG["prefix"] = "/$(v0)"` + "\n")
	for i := range 40 {
		fmt.Fprintf(&b, "CONFIG[\"v%d\"] = \"$(v%d)$(v%d)$(v%d)$(v%d)\"\n", i, i+1, i+1, i+1, i+1)
	}
	b.WriteString(`CONFIG["v40"] = "0"` + "\n")
	c, err := runtimes.ParseRbConfig([]byte(b.String()), "/rbconfig.rb")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Prefix) > 4096 || !strings.HasPrefix(c.Prefix, "/0000") {
		t.Errorf("prefix of %d bytes: %.20q", len(c.Prefix), c.Prefix)
	}
}
