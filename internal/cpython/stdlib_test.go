package cpython_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/cpython"
)

func TestExpectedModules(t *testing.T) {
	for _, xy := range []string{"2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14"} {
		mods, ok := cpython.ExpectedModules(xy)
		if !ok || len(mods) < 250 {
			t.Errorf("%s: %d modules, ok=%v", xy, len(mods), ok)
		}
		have := map[string]bool{}
		for _, m := range mods {
			have[m] = true
			if cpython.PlatformOnly(m) {
				t.Errorf("%s: platform-only %s in the Linux list", xy, m)
			}
		}
		for _, m := range []string{"os", "sys", "_sqlite3", "_ssl", "_ctypes", "zlib"} {
			if !have[m] {
				t.Errorf("%s: %s not expected", xy, m)
			}
		}
		if xy >= "3.1" && len(xy) == 4 && !have["_gdbm"] {
			t.Errorf("%s: _gdbm not expected", xy)
		}
	}
	if m, _ := cpython.ExpectedModules("3.14"); !contains(m, "annotationlib") || !contains(m, "compression") {
		t.Errorf("3.14 list lacks What's New additions")
	}
	if _, ok := cpython.ExpectedModules("4.0"); ok {
		t.Error("4.0 has a list")
	}
	for _, name := range []string{"msvcrt", "winreg", "_winapi", "_ios_support", "nt"} {
		if !cpython.PlatformOnly(name) {
			t.Errorf("PlatformOnly(%s) = false", name)
		}
	}
	if cpython.PlatformOnly("posix") || cpython.PlatformOnly("ntpath") {
		t.Error("posix/ntpath are not platform-only")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
