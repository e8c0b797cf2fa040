package version_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/version"
)

// The scheme functions spell out the snapshot's names; these tables hold
// them to the snapshot's constants, so that a renamed kind or type cannot
// silently fall back to natural order.
func TestSchemeForPackage(t *testing.T) {
	for _, tt := range []struct {
		typ  string
		want version.Scheme
	}{
		{snapshot.PackageDeb, version.Deb},
		{snapshot.PackageRPM, version.RPM},
		{snapshot.PackageAPK, version.APK},
		{"pip", version.Natural},
		{"", version.Natural},
	} {
		if got := version.SchemeForPackage(tt.typ); got != tt.want {
			t.Errorf("SchemeForPackage(%q) = %q, want %q", tt.typ, got, tt.want)
		}
	}
}

func TestSchemeForRuntime(t *testing.T) {
	for _, tt := range []struct {
		kind string
		want version.Scheme
	}{
		{snapshot.RuntimePython, version.PEP440},
		{snapshot.RuntimeNode, version.Semver},
		{snapshot.RuntimeGo, version.Semver},
		{snapshot.RuntimeJava, version.Semver},
		{snapshot.RuntimeRuby, version.Semver},
		{snapshot.RuntimeDotnetSDK, version.Semver},
		{snapshot.RuntimeDotnetRuntime, version.Semver},
		{"perl", version.Natural},
	} {
		if got := version.SchemeForRuntime(tt.kind); got != tt.want {
			t.Errorf("SchemeForRuntime(%q) = %q, want %q", tt.kind, got, tt.want)
		}
	}
}

func TestSchemeForTool(t *testing.T) {
	for _, tt := range []struct {
		name string
		want version.Scheme
	}{
		{snapshot.RuntimePython, version.PEP440},
		{"python3", version.PEP440},
		{"pipx", version.PEP440},
		{snapshot.RuntimeNode, version.Semver},
		{"git", version.Semver},
	} {
		if got := version.SchemeForTool(tt.name); got != tt.want {
			t.Errorf("SchemeForTool(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
