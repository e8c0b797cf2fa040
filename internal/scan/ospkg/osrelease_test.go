package ospkg_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/scan/ospkg"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

var osReleaseCases = []struct {
	name string
	in   string
	want snapshot.OS
	// shell is true when the text is valid shell, so sh can be asked what
	// the values are.
	shell bool
}{
	{
		name:  "debian",
		in:    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
		want:  snapshot.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Codename: "bookworm"},
		shell: true,
	},
	{
		name:  "alpine without trailing newline",
		in:    "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"",
		want:  snapshot.OS{ID: "alpine", VersionID: "3.20.3", PrettyName: "Alpine Linux v3.20"},
		shell: true,
	},
	{
		name:  "single quotes, comments and blank lines",
		in:    "# written by hand\n\nID='rhel'\nID_LIKE='fedora'\n   \nVERSION_ID='9.4'\n",
		want:  snapshot.OS{ID: "rhel", VersionID: "9.4", IDLike: "fedora"},
		shell: true,
	},
	{
		name:  "escapes in double quotes",
		in:    `PRETTY_NAME="Say \"hi\" \\ cost \$5 \` + "`" + `x\` + "`" + `"` + "\nID=x\n",
		want:  snapshot.OS{ID: "x", PrettyName: "Say \"hi\" \\ cost $5 `x`"},
		shell: true,
	},
	{
		name:  "backslash kept before other characters in double quotes",
		in:    `PRETTY_NAME="a\nb"` + "\n",
		want:  snapshot.OS{PrettyName: `a\nb`},
		shell: true,
	},
	{
		name:  "unquoted escapes and concatenation",
		in:    `PRETTY_NAME=Linux\ From\ Scratch" "'12'` + "\n",
		want:  snapshot.OS{PrettyName: "Linux From Scratch 12"},
		shell: true,
	},
	{
		name: "CRLF and spaces around the line",
		in:   "ID=ubuntu\r\n  VERSION_ID=\"24.04\"  \r\nID_LIKE=debian\r\n",
		want: snapshot.OS{ID: "ubuntu", VersionID: "24.04", IDLike: "debian"},
	},
	{
		name: "odd lines are ignored",
		in:   "garbage line\n=novalue\n1ID=bad\nID=ok\nVERSION_ID=\"unterminated\n",
		want: snapshot.OS{ID: "ok", VersionID: "unterminated"},
	},
	{
		name:  "later assignment wins",
		in:    "ID=first\nID=second\n",
		want:  snapshot.OS{ID: "second"},
		shell: true,
	},
	{name: "empty", in: "", want: snapshot.OS{}, shell: true},
}

func TestParseOSRelease(t *testing.T) {
	for _, tc := range osReleaseCases {
		t.Run(tc.name, func(t *testing.T) {
			got := ospkg.ParseOSRelease([]byte(tc.in))
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("ParseOSRelease (-want +got):\n%s", d)
			}
		})
	}
}

// TestParseOSReleaseShell checks the cases that are valid shell against
// what sh makes of them, since os-release(5) is written to be sourced.
func TestParseOSReleaseShell(t *testing.T) {
	sh := testenv.RequireTool(t, "sh")
	for _, tc := range osReleaseCases {
		if !tc.shell {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "os-release")
			if err := os.WriteFile(f, []byte(tc.in), 0o644); err != nil {
				t.Fatal(err)
			}
			out := run(t, sh, "-c", `. "$1"; printf '%s\0' "$ID" "$VERSION_ID" "$PRETTY_NAME" "$ID_LIKE" "$VERSION_CODENAME"`, "sh", f)
			v := strings.Split(out, "\x00")
			want := snapshot.OS{ID: v[0], VersionID: v[1], PrettyName: v[2], IDLike: v[3], Codename: v[4]}
			if d := cmp.Diff(want, ospkg.ParseOSRelease([]byte(tc.in))); d != "" {
				t.Errorf("differs from sh (-sh +ours):\n%s", d)
			}
		})
	}
}

func TestReadOS(t *testing.T) {
	ctx := context.Background()

	t.Run("this machine", func(t *testing.T) {
		sh := testenv.RequireTool(t, "sh")
		out := run(t, sh, "-c", `. /etc/os-release; printf '%s\0' "$ID" "$VERSION_ID" "$PRETTY_NAME" "$ID_LIKE" "$VERSION_CODENAME"`)
		v := strings.Split(out, "\x00")
		want := snapshot.OS{ID: v[0], VersionID: v[1], PrettyName: v[2], IDLike: v[3], Codename: v[4]}
		got, err := ospkg.ReadOS(ctx, &source.Tree{Dir: "/", RootFS: true})
		if err != nil {
			t.Fatal(err)
		}
		if want.ID == "" {
			t.Fatal("sh found no ID in /etc/os-release")
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ReadOS(/) (-sh +ours):\n%s", d)
		}
	})

	tests := []struct {
		name  string
		setup func(t *testing.T, root string)
		want  snapshot.OS
	}{
		{
			name:  "no os-release",
			setup: func(t *testing.T, root string) {},
		},
		{
			name: "usr/lib fallback",
			setup: func(t *testing.T, root string) {
				writeFiles(t, root, map[string]string{"/usr/lib/os-release": "ID=fallback\n"})
			},
			want: snapshot.OS{ID: "fallback"},
		},
		{
			name: "etc wins",
			setup: func(t *testing.T, root string) {
				writeFiles(t, root, map[string]string{"/usr/lib/os-release": "ID=vendor\n", "/etc/os-release": "ID=admin\n"})
			},
			want: snapshot.OS{ID: "admin"},
		},
		{
			// The absolute link means the image's /usr/lib/os-release,
			// never this machine's.
			name: "absolute link resolved inside the image",
			setup: func(t *testing.T, root string) {
				writeFiles(t, root, map[string]string{"/usr/lib/os-release": "ID=inside\n"})
				if err := os.Symlink("/usr/lib/os-release", filepath.Join(root, "etc/os-release")); err != nil {
					t.Fatal(err)
				}
			},
			want: snapshot.OS{ID: "inside"},
		},
		{
			name: "dangling link falls back",
			setup: func(t *testing.T, root string) {
				writeFiles(t, root, map[string]string{"/usr/lib/os-release": "ID=fallback\n"})
				if err := os.Symlink("../nowhere", filepath.Join(root, "etc/os-release")); err != nil {
					t.Fatal(err)
				}
			},
			want: snapshot.OS{ID: "fallback"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, root)
			got, err := ospkg.ReadOS(ctx, &source.Tree{Dir: root, RootFS: true})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("ReadOS (-want +got):\n%s", d)
			}
		})
	}

	t.Run("unreadable is an error", func(t *testing.T) {
		root := t.TempDir()
		// A directory where the file should be cannot be read.
		if err := os.MkdirAll(filepath.Join(root, "etc/os-release"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := ospkg.ReadOS(ctx, &source.Tree{Dir: root, RootFS: true}); err == nil || !strings.Contains(err.Error(), "/etc/os-release") {
			t.Errorf("ReadOS error = %v, want one naming /etc/os-release", err)
		}
	})
}

func FuzzParseOSRelease(f *testing.F) {
	for _, tc := range osReleaseCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o := ospkg.ParseOSRelease(data)
		// Values come from one line each and never grow beyond the input.
		for _, v := range []string{o.ID, o.VersionID, o.PrettyName, o.IDLike, o.Codename} {
			if strings.ContainsAny(v, "\n") || len(v) > len(data) {
				t.Errorf("value %q from %q", v, data)
			}
		}
	})
}
