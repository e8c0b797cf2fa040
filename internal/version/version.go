// Package version orders version strings the way each ecosystem does, so
// that the gate can tell an upgrade from a downgrade, and matches them
// against the ranges that check specs use.
//
// Every function here accepts any string: versions scanned from images are
// outside input, so an unparsable version never panics and never errors, it
// falls back to natural order ("1.10" > "1.9").
package version

import (
	"cmp"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	pep440 "github.com/aquasecurity/go-pep440-version"
	apk "github.com/knqyf263/go-apk-version"
	rpm "github.com/knqyf263/go-rpm-version"
	deb "pault.ag/go/debian/version"
)

// Scheme names a version order. Pick one with SchemeForPackage,
// SchemeForRuntime or SchemeForTool rather than by hand, so that every part
// of imagegate orders an ecosystem's versions the same way.
type Scheme string

// Schemes understood by Compare and ParseConstraint. Any other scheme,
// including "", means natural order.
const (
	Deb     Scheme = "deb"    // dpkg's algorithm: epochs, "~" sorts before everything
	RPM     Scheme = "rpm"    // rpmvercmp
	APK     Scheme = "apk"    // apk-tools: _alpha/_beta/_rc/_p suffixes, -rN
	PEP440  Scheme = "pep440" // Python interpreters and distributions
	Semver  Scheme = "semver" // node, go ("go1.22.3"), java, ruby, dotnet
	Natural Scheme = ""       // digit runs compared as numbers, the rest as text
)

// Compare returns -1, 0 or +1 as a sorts before, equal to, or after b in
// scheme's order. When either side does not parse in scheme, both are
// compared in natural order, so Compare stays antisymmetric.
func Compare(scheme Scheme, a, b string) (result int) {
	if a == b {
		return 0
	}
	// The parsers below are third-party code fed with image content; a
	// panic in one must not take the gate down.
	defer func() {
		if recover() != nil {
			result = natural(a, b)
		}
	}()
	switch scheme {
	case Deb:
		va, errA := deb.Parse(a)
		vb, errB := deb.Parse(b)
		if errA == nil && errB == nil {
			return sign(deb.Compare(va, vb))
		}
	case RPM:
		if plausible(a) && plausible(b) {
			return sign(rpm.NewVersion(a).Compare(rpm.NewVersion(b)))
		}
	case APK:
		va, errA := apk.NewVersion(a)
		vb, errB := apk.NewVersion(b)
		if errA == nil && errB == nil {
			return sign(va.Compare(vb))
		}
	case PEP440:
		va, errA := pep440.Parse(a)
		vb, errB := pep440.Parse(b)
		if errA == nil && errB == nil {
			return sign(va.Compare(vb))
		}
	case Semver:
		va, errA := semver.NewVersion(trimSemver(a))
		vb, errB := semver.NewVersion(trimSemver(b))
		if errA == nil && errB == nil {
			return sign(va.Compare(vb))
		}
	}
	return natural(a, b)
}

// plausible rejects strings that rpmvercmp would order but that are no
// version at all, so that they fall back to natural order like the other
// schemes' parse errors.
func plausible(s string) bool {
	return strings.ContainsAny(s, "0123456789")
}

// trimSemver strips the prefixes runtimes put before a semantic version:
// Go's "go1.22.3" and the common "v1.2.3".
func trimSemver(s string) string {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "go"); ok {
		// Go writes pre-releases as "go1.22rc1", before the ".0" they
		// precede; semver wants "1.22.0-rc1".
		if m := goPrerelease.FindStringSubmatch(rest); m != nil {
			return m[1] + ".0-" + m[2]
		}
		return rest
	}
	return s
}

var goPrerelease = regexp.MustCompile(`^(\d+\.\d+)((?:rc|beta|alpha)\d+)$`)

func sign(n int) int {
	return cmp.Compare(n, 0)
}

// natural compares runs of digits as numbers and everything else byte by
// byte; a digit run sorts after a non-digit run at the same place. Strings
// that tie ("01" and "1") are ordered bytewise so the order is total.
func natural(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		da, db := isDigit(a[i]), isDigit(b[j])
		if da != db {
			if da {
				return 1
			}
			return -1
		}
		ei, ej := i, j
		for ei < len(a) && isDigit(a[ei]) == da {
			ei++
		}
		for ej < len(b) && isDigit(b[ej]) == db {
			ej++
		}
		ra, rb := a[i:ei], b[j:ej]
		var c int
		if da {
			c = compareDigits(ra, rb)
		} else {
			c = strings.Compare(ra, rb)
		}
		if c != 0 {
			return c
		}
		i, j = ei, ej
	}
	if c := cmp.Compare(len(a)-i, len(b)-j); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// compareDigits compares two runs of ASCII digits as numbers of any size.
func compareDigits(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// MajorMinor is the release series of a version: "3.13" for "3.13.0rc1" and
// for "3.13.2" alike (only the digits of the minor are kept), v itself when
// it has no minor. CPython's module lists and Go's and Ruby's standard
// parts are kept per series.
func MajorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	return parts[0] + "." + minor
}
