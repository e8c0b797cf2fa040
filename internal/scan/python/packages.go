package python

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// maxMetadataHeader bounds what is read of one METADATA or PKG-INFO file:
// the header comes first and the (possibly huge) description after it.
const maxMetadataHeader = 256 << 10

// ErrNoName is returned by ParseMetadata for a file without a Name field.
var ErrNoName = errors.New("no Name field")

// Metadata is what a distribution's core metadata says about itself.
type Metadata struct {
	Name    string
	Version string
}

// ParseMetadata reads the Name and Version fields of a core-metadata file
// (a wheel's METADATA or an egg's PKG-INFO): RFC 822 style headers up to
// the first blank line. It returns ErrNoName when there is no Name.
func ParseMetadata(r io.Reader) (Metadata, error) {
	var md Metadata
	sc := bufio.NewScanner(io.LimitReader(r, maxMetadataHeader))
	sc.Buffer(make([]byte, 4096), maxMetadataHeader)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // a folded continuation of the previous field
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "name":
			if md.Name == "" {
				md.Name = val
			}
		case "version":
			if md.Version == "" {
				md.Version = val
			}
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return Metadata{}, fmt.Errorf("read metadata: %w", err)
	}
	if md.Name == "" {
		return Metadata{}, ErrNoName
	}
	return md, nil
}

// sitePackages lists the distributions installed for the installation:
// its own lib/pythonX.Y/site-packages (and dist-packages, lib64 too), the
// standard library folder itself (Python 2.7 ships wsgiref.egg-info there),
// and the extra in-image directories the walk attributed to it.
func sitePackages(t *source.Tree, in *install) []snapshot.RuntimePackage {
	dirs := []string{}
	for _, lib := range []string{"lib", "lib64"} {
		for _, sub := range []string{"site-packages", "dist-packages", "."} {
			dirs = append(dirs, path.Join(in.prefix, lib, "python"+in.xy, sub))
		}
	}
	dirs = append(dirs, in.extraSite...)
	seen := map[string]bool{}
	seenDir := map[string]bool{}
	var out []snapshot.RuntimePackage
	for _, d := range dirs {
		real, err := t.Resolve(d)
		if err != nil || seenDir[real] {
			continue
		}
		seenDir[real] = true
		entries, err := t.ReadDir(real)
		if err != nil {
			continue
		}
		for _, e := range entries {
			md, ok := readDistribution(t, path.Join(real, e.Name()), e.Name(), e.IsDir())
			if !ok {
				continue
			}
			key := strings.ToLower(md.Name) + "\x00" + md.Version
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, snapshot.RuntimePackage{Name: md.Name, Version: md.Version})
		}
	}
	return out
}

func readDistribution(t *source.Tree, p, name string, isDir bool) (Metadata, bool) {
	var file string
	switch {
	case strings.HasSuffix(name, ".dist-info") && isDir:
		file = path.Join(p, "METADATA")
	case strings.HasSuffix(name, ".egg-info") && isDir:
		file = path.Join(p, "PKG-INFO")
	case strings.HasSuffix(name, ".egg-info"):
		file = p
	case strings.HasSuffix(name, ".egg") && isDir:
		file = path.Join(p, "EGG-INFO", "PKG-INFO")
	default:
		return Metadata{}, false
	}
	f, err := t.Open(file)
	if err != nil {
		return Metadata{}, false
	}
	defer f.Close()
	md, err := ParseMetadata(f)
	if err != nil {
		return Metadata{}, false
	}
	return md, true
}
