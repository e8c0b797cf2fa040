package ospkg

import "bytes"

// Internal parsers exposed to the external tests' fuzz targets.

// ParseRPMHeader returns the package and file count of an rpm header blob.
func ParseRPMHeader(b []byte) (name, version string, files int, err error) {
	p, err := parseRPMHeader(b)
	return p.pkg.Name, p.pkg.Version, len(p.files), err
}

// BDBValues returns the values of a Berkeley DB hash file held in memory.
func BDBValues(b []byte) ([][]byte, error) {
	return bdbValues(bytes.NewReader(b), int64(len(b)))
}
