package version_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/version"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		scheme version.Scheme
		a, b   string
		want   int
	}{
		// dpkg: epochs win, "~" sorts before the empty string, revisions.
		{version.Deb, "1:1.0", "2.0", 1},
		{version.Deb, "1.0~rc1", "1.0", -1},
		{version.Deb, "1.0~rc1", "1.0~rc1~", 1},
		{version.Deb, "3.40.1-2+deb12u1", "3.40.1-2+deb12u2", -1},
		{version.Deb, "3.0.11-1~deb12u2", "3.0.11-1", -1},
		{version.Deb, "1.10", "1.9", 1},
		{version.Deb, "2.36-9+deb12u4", "2.36-9+deb12u4", 0},
		// rpm
		{version.RPM, "1.0-1.el9", "1.0-2.el9", -1},
		{version.RPM, "2:1.0-1", "1:9.9-1", 1},
		{version.RPM, "1.0~rc1-1", "1.0-1", -1},
		{version.RPM, "1.10-1", "1.9-1", 1},
		// apk
		{version.APK, "3.1.4-r5", "3.1.4-r10", -1},
		{version.APK, "1.2.3_rc1-r0", "1.2.3-r0", -1},
		{version.APK, "1.2.3_p1-r0", "1.2.3-r0", 1},
		// PEP 440: dev < pre < final < post; local versions after public.
		{version.PEP440, "3.8.18", "3.8.20", -1},
		{version.PEP440, "3.12.0rc1", "3.12.0", -1},
		{version.PEP440, "3.12.0a1", "3.12.0b1", -1},
		{version.PEP440, "1.0.dev1", "1.0a1", -1},
		{version.PEP440, "1.0.post1", "1.0", 1},
		{version.PEP440, "1.0", "1.0.0", 0},
		{version.PEP440, "1!1.0", "2.0", 1},
		{version.PEP440, "2.7.18", "3.6.15", -1},
		// semver, with the prefixes runtimes put in front.
		{version.Semver, "go1.22.3", "go1.22.10", -1},
		{version.Semver, "go1.22rc1", "go1.22.0", -1},
		{version.Semver, "go1.22beta1", "go1.22rc2", -1},
		{version.Semver, "go1.21.13", "go1.22rc1", -1},
		{version.Semver, "v20.11.1", "20.9.0", 1},
		{version.Semver, "1.0.0-rc.1", "1.0.0", -1},
		{version.Semver, "17.0.15+6", "17.0.9", 1},
		{version.Semver, "8.0.100", "8.0.404", -1},
		{version.Semver, "1.8.0_392", "1.8.0_402", -1}, // not semver: natural order
		// natural order
		{version.Natural, "1.10", "1.9", 1},
		{version.Natural, "2.39.5", "2.39.5", 0},
		{version.Natural, "1.0", "1.0a", -1},
		{version.Natural, "01", "1", -1},
		{version.Natural, "", "1", -1},
		{version.Natural, "abc", "abd", -1},
		{version.Natural, "99999999999999999999999", "100000000000000000000000", -1},
		// Unparsable input in any scheme falls back to natural order.
		{version.Deb, "not a version!", "also bad!", 1},
		{version.PEP440, "latest", "1.0", -1},
		{"unknown-scheme", "1.10", "1.9", 1},
	}
	for _, tt := range tests {
		got := version.Compare(tt.scheme, tt.a, tt.b)
		if got != tt.want {
			t.Errorf("Compare(%q, %q, %q) = %d, want %d", tt.scheme, tt.a, tt.b, got, tt.want)
		}
		if back := version.Compare(tt.scheme, tt.b, tt.a); back != -tt.want {
			t.Errorf("Compare(%q, %q, %q) = %d, want %d (antisymmetry)", tt.scheme, tt.b, tt.a, back, -tt.want)
		}
	}
}

func FuzzCompare(f *testing.F) {
	for _, s := range []struct{ scheme, a, b string }{
		{"deb", "1:1.0~rc1-1", "1.0"}, {"rpm", "2:1.0-1.el9", "1.0~rc1"},
		{"apk", "1.2.3_rc1-r0", "1.2.3-r1"}, {"pep440", "1!2.0.post1.dev3+local", "2.0rc1"},
		{"semver", "go1.22.3", "v1.2.3-rc.1+build"}, {"", "1.10", "1.9"},
	} {
		f.Add(s.scheme, s.a, s.b)
	}
	f.Fuzz(func(t *testing.T, name, a, b string) {
		scheme := version.Scheme(name)
		ab, ba := version.Compare(scheme, a, b), version.Compare(scheme, b, a)
		if ab < -1 || ab > 1 {
			t.Fatalf("Compare(%q, %q, %q) = %d, want -1, 0 or 1", scheme, a, b, ab)
		}
		if ab != -ba {
			t.Fatalf("Compare(%q, %q, %q) = %d but reversed = %d", scheme, a, b, ab, ba)
		}
		if version.Compare(scheme, a, a) != 0 {
			t.Fatalf("Compare(%q, %q, itself) != 0", scheme, a)
		}
	})
}
