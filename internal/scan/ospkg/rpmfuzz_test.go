package ospkg_test

import (
	"os"
	"testing"

	"github.com/imagegate/imagegate/internal/scan/ospkg"
)

// FuzzRPMDatabase feeds damaged Berkeley DB files, seeded with a real
// CentOS one, through the database reader and every value through the
// header parser: errors are fine, panics, hangs and huge allocations are
// not.
func FuzzRPMDatabase(f *testing.F) {
	if data, err := os.ReadFile(fuzzSeedDB(f)); err == nil {
		// The first pages hold the metadata and the first records: enough
		// for the fuzzer to reach every branch without a 10 MB input.
		f.Add(data[:min(len(data), 64<<10)])
	}
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, data []byte) {
		values, err := ospkg.BDBValues(data)
		if err != nil {
			return
		}
		total := 0
		for _, v := range values {
			total += len(v)
			name, version, _, err := ospkg.ParseRPMHeader(v)
			if err == nil && (name == "" || version == "") {
				t.Errorf("header parsed without name or version: %q %q", name, version)
			}
		}
		// Overflow chains are bounded by the file's pages; a cycle must
		// not multiply the data.
		if total > len(data)*len(data)/512+len(data) {
			t.Errorf("%d value bytes from a %d-byte file", total, len(data))
		}
	})
}

// FuzzRPMHeader mutates a real rpm header blob.
func FuzzRPMHeader(f *testing.F) {
	if data, err := os.ReadFile(fuzzSeedDB(f)); err == nil {
		if values, err := ospkg.BDBValues(data); err == nil && len(values) > 0 {
			f.Add(values[0])
		}
	}
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 3, 232, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, version, files, err := ospkg.ParseRPMHeader(b)
		if err != nil {
			return
		}
		if name == "" || version == "" || files > len(b) {
			t.Errorf("header gave name %q version %q and %d files from %d bytes", name, version, files, len(b))
		}
	})
}

func fuzzSeedDB(f *testing.F) string {
	f.Helper()
	return goRPMDBTestdata(f, "centos7-plain")
}
