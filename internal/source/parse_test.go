package source_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/source"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		want    source.Ref
		wantErr string // "" = no error
	}{
		{"host", source.Ref{Scheme: source.SchemeHost}, ""},
		{"dir:/opt/hostedtoolcache", source.Ref{Scheme: source.SchemeDir, Location: "/opt/hostedtoolcache"}, ""},
		{"dir:rel/path", source.Ref{Scheme: source.SchemeDir, Location: "rel/path"}, ""},
		{"oci:./image@sha256:abc", source.Ref{Scheme: source.SchemeOCI, Location: "./image@sha256:abc"}, ""},
		{"docker-archive:img.tar:repo/x:1", source.Ref{Scheme: source.SchemeDockerArchive, Location: "img.tar:repo/x:1"}, ""},
		{"registry:localhost:5000/a/b:1", source.Ref{Scheme: source.SchemeRegistry, Location: "localhost:5000/a/b:1"}, ""},
		{"dir:", source.Ref{}, `"dir:" names no directory after "dir:"`},
		{"dir", source.Ref{}, `"dir" names no directory after "dir:"`},
		{"oci:", source.Ref{}, `"oci:" names no image after "oci:"`},
		{"registry", source.Ref{}, `"registry" names no image after "registry:"`},
		{"host:x", source.Ref{}, `"host:x": use dir:PATH, host, oci:PATH, docker-archive:FILE or registry:REF`},
		{"snapshot.json", source.Ref{}, `"snapshot.json": use dir:PATH`},
		{"", source.Ref{}, `"": use dir:PATH`},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := source.Parse(tc.spec)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.Is(err, source.ErrBadSource) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v: want ErrBadSource containing %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Error(diff)
			}
		})
	}
}

// TestIsSource: what makes a command argument a SOURCE rather than a
// snapshot file. A malformed SOURCE is still a SOURCE (Open says what is
// wrong with it), and a file may be named like a scheme without its colon.
func TestIsSource(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want bool
	}{
		{"host", true},
		{"dir:/x", true},
		{"dir:", true},
		{"oci:./layout", true},
		{"docker-archive:img.tar", true},
		{"registry:ghcr.io/a/b:1", true},
		{"registry:", true},
		{"snapshot.json", false},
		{"./dir:x", false},
		{"dir", false},
		{"hostname", false},
		{"host:x", false},
		{"nope:/x", false},
		{"", false},
	} {
		if got := source.IsSource(tc.arg); got != tc.want {
			t.Errorf("IsSource(%q) = %v, want %v", tc.arg, got, tc.want)
		}
	}
}

// FuzzParse: Parse never panics, what it accepts is a SOURCE by IsSource,
// and it loses nothing of the argument.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"host", "dir:/x", "oci:", "docker-archive:a:b", "registry:r/x:1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ref, err := source.Parse(spec)
		if err != nil {
			if !errors.Is(err, source.ErrBadSource) {
				t.Fatalf("Parse(%q): %v does not wrap ErrBadSource", spec, err)
			}
			return
		}
		if !source.IsSource(spec) {
			t.Errorf("Parse(%q) accepted what IsSource rejects", spec)
		}
		back := ref.Scheme
		if ref.Scheme != source.SchemeHost {
			back += ":" + ref.Location
		}
		if back != spec {
			t.Errorf("Parse(%q) = %+v, which reads back as %q", spec, ref, back)
		}
	})
}
