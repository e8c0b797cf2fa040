package version_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/version"
)

func TestConstraintMatch(t *testing.T) {
	tests := []struct {
		scheme         version.Scheme
		constraint     string
		match, nomatch []string
	}{
		{version.Semver, ">=18 <23", []string{"18.0.0", "20.11.1", "22.99.0", "v18.20.4"}, []string{"16.20.2", "23.0.0", "24.1.0"}},
		{version.Semver, ">=18, <23", []string{"20.0.0"}, []string{"23.1.0"}},
		{version.PEP440, "~3.11", []string{"3.11.0", "3.11.9"}, []string{"3.10.14", "3.12.0", "3.110.1"}},
		{version.Semver, "^1.2", []string{"1.2.0", "1.9.3"}, []string{"1.1.9", "2.0.0"}},
		{version.Semver, "^0.3.1", []string{"0.3.1", "0.3.9"}, []string{"0.4.0", "0.3.0"}},
		{version.PEP440, "3.7.*", []string{"3.7.16", "3.7.0rc1", "3.7"}, []string{"3.70.1", "3.8.0", "3"}},
		{version.PEP440, "3.7.x", []string{"3.7.1"}, []string{"3.8.1"}},
		{version.PEP440, "==3.12.1", []string{"3.12.1", "3.12.1.0"}, []string{"3.12.10", "3.12.0"}},
		{version.PEP440, "~=3.11", []string{"3.11.2", "3.13.0"}, []string{"3.10.0", "4.0"}},
		{version.PEP440, "~=1.4.5", []string{"1.4.5", "1.4.9"}, []string{"1.5.0", "1.4.4"}},
		{version.PEP440, "!=3.7.*", []string{"3.8.1"}, []string{"3.7.1"}},
		{version.Semver, "20", []string{"20.0.0", "20.11.1"}, []string{"2.0.0", "21.0.0", "200.1"}},
		{version.Semver, "go1.22.*", []string{"go1.22.3"}, []string{"go1.23.0"}},
		{version.Semver, "<18 || >=22", []string{"16.1.0", "22.0.0"}, []string{"18.0.0", "20.5.0"}},
		{version.Deb, ">=3.40.1-2", []string{"3.40.1-2+deb12u1", "1:0.1"}, []string{"3.40.1-1", "3.40.1~rc1-9"}},
		{version.Deb, ">1.0~rc1", []string{"1.0"}, []string{"1.0~beta"}},
		{version.Natural, ">1.9", []string{"1.10"}, []string{"1.8", "1.9"}},
	}
	for _, tt := range tests {
		c, err := version.ParseConstraint(tt.scheme, tt.constraint)
		if err != nil {
			t.Errorf("ParseConstraint(%q, %q): %v", tt.scheme, tt.constraint, err)
			continue
		}
		for _, v := range tt.match {
			if !c.Match(v) {
				t.Errorf("%q (%s) does not match %q, want match", tt.constraint, tt.scheme, v)
			}
		}
		for _, v := range tt.nomatch {
			if c.Match(v) {
				t.Errorf("%q (%s) matches %q, want no match", tt.constraint, tt.scheme, v)
			}
		}
		if c.String() != tt.constraint {
			t.Errorf("String() = %q, want %q", c.String(), tt.constraint)
		}
	}
}

func TestParseConstraintErrors(t *testing.T) {
	for _, s := range []string{"", "   ", ">=", "=>18", ">= <23", "~", "^abc", "3.*.1", ">=3.7.*", "~=3", "latest", "18 || ", "*"} {
		c, err := version.ParseConstraint(version.Semver, s)
		if err == nil {
			t.Errorf("ParseConstraint(%q) = %v, want an error", s, c)
			continue
		}
		if !errors.Is(err, version.ErrConstraint) {
			t.Errorf("ParseConstraint(%q) error %v does not wrap ErrConstraint", s, err)
		}
	}
}

func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{">=18 <23", "~3.11", "^1.2", "3.7.*", "==3.12.1", "~=1.4.5", "<1 || >2", "!=3.7.x"} {
		f.Add(s, "3.11.4")
	}
	f.Fuzz(func(t *testing.T, s, v string) {
		c, err := version.ParseConstraint(version.PEP440, s)
		if err != nil {
			if c != nil {
				t.Fatalf("ParseConstraint(%q) returned both a constraint and %v", s, err)
			}
			return
		}
		got := c.Match(v)
		// Or-ing a constraint with itself changes nothing.
		twice, err := version.ParseConstraint(version.PEP440, s+" || "+s)
		if err != nil {
			t.Fatalf("ParseConstraint(%q) parsed but doubled with || failed: %v", s, err)
		}
		if twice.Match(v) != got {
			t.Fatalf("%q || itself disagrees with %q on %q", s, s, v)
		}
		// An exact pin matches the version it names.
		if eq, err := version.ParseConstraint(version.PEP440, "=="+v); err == nil && !strings.ContainsAny(v, " ,\t|\n\r\v\f") && !eq.Match(v) {
			t.Fatalf("==%s does not match %q", v, v)
		}
	})
}
