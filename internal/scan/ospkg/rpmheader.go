package ospkg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/snapshot"
)

// rpm header tags and types a scan needs (rpm's lib/rpmtag.h).
const (
	rpmTagName        = 1000
	rpmTagVersion     = 1001
	rpmTagRelease     = 1002
	rpmTagEpoch       = 1003
	rpmTagArch        = 1022
	rpmTagOldFiles    = 1027
	rpmTagSourceRPM   = 1044
	rpmTagDirIndexes  = 1116
	rpmTagBaseNames   = 1117
	rpmTagDirNames    = 1118
	rpmTypeInt32      = 4
	rpmTypeString     = 6
	rpmTypeStrArray   = 8
	rpmTypeI18NString = 9

	// rpm refuses headers beyond these (lib/header_internal.h); so do we,
	// before allocating anything they claim.
	rpmMaxIndex = 0xffff
	rpmMaxData  = 0x0fffffff
)

const rpmType = snapshot.PackageRPM

// rpmPackage is what one rpm header says.
type rpmPackage struct {
	pkg   snapshot.Package
	files []string
}

var errRPMHeader = errors.New("malformed rpm header")

// parseRPMHeader reads a header blob as rpm stores it in its database:
// big-endian index count and data length, the index entries (tag, type,
// offset, count), then the data they point into. Every offset and count is
// checked against the blob, which may come from a hostile image.
func parseRPMHeader(b []byte) (rpmPackage, error) {
	if len(b) < 8 {
		return rpmPackage{}, fmt.Errorf("%w: %d bytes", errRPMHeader, len(b))
	}
	il := binary.BigEndian.Uint32(b[0:4])
	dl := binary.BigEndian.Uint32(b[4:8])
	if il > rpmMaxIndex || dl > rpmMaxData || 8+uint64(il)*16+uint64(dl) > uint64(len(b)) {
		return rpmPackage{}, fmt.Errorf("%w: %d entries, %d data bytes in a %d-byte blob", errRPMHeader, il, dl, len(b))
	}
	index := b[8 : 8+il*16]
	data := b[8+il*16 : 8+il*16+dl]

	var (
		p                   rpmPackage
		version, release    string
		epoch               string
		baseNames, dirNames []string
		dirIndexes          []uint32
		oldFiles            []string
	)
	for i := 0; i < int(il); i++ {
		e := index[i*16 : i*16+16]
		tag := binary.BigEndian.Uint32(e[0:4])
		typ := binary.BigEndian.Uint32(e[4:8])
		off := binary.BigEndian.Uint32(e[8:12])
		count := binary.BigEndian.Uint32(e[12:16])
		if off > dl {
			return rpmPackage{}, fmt.Errorf("%w: tag %d points past the data", errRPMHeader, tag)
		}
		d := data[off:]
		var err error
		switch tag {
		case rpmTagName:
			p.pkg.Name, err = rpmString(d, typ)
		case rpmTagVersion:
			version, err = rpmString(d, typ)
		case rpmTagRelease:
			release, err = rpmString(d, typ)
		case rpmTagArch:
			p.pkg.Arch, err = rpmString(d, typ)
		case rpmTagSourceRPM:
			var src string
			src, err = rpmString(d, typ)
			p.pkg.SourceName = sourceRPMName(src)
		case rpmTagEpoch:
			var n []uint32
			n, err = rpmInt32s(d, typ, count)
			if err == nil && len(n) > 0 {
				epoch = strconv.FormatUint(uint64(n[0]), 10)
			}
		case rpmTagDirIndexes:
			dirIndexes, err = rpmInt32s(d, typ, count)
		case rpmTagBaseNames:
			baseNames, err = rpmStrings(d, typ, count)
		case rpmTagDirNames:
			dirNames, err = rpmStrings(d, typ, count)
		case rpmTagOldFiles:
			oldFiles, err = rpmStrings(d, typ, count)
		}
		if err != nil {
			return rpmPackage{}, fmt.Errorf("tag %d: %w", tag, err)
		}
	}
	if p.pkg.Name == "" || version == "" {
		return rpmPackage{}, fmt.Errorf("%w: no name or version", errRPMHeader)
	}
	p.pkg.Type = rpmType
	// The form of rpm's own %{EVR}: the epoch appears only when the
	// header has one.
	p.pkg.Version = version
	if release != "" {
		p.pkg.Version += "-" + release
	}
	if epoch != "" {
		p.pkg.Version = epoch + ":" + p.pkg.Version
	}
	if p.pkg.SourceName == p.pkg.Name {
		p.pkg.SourceName = ""
	}
	if len(baseNames) != len(dirIndexes) {
		return rpmPackage{}, fmt.Errorf("%w: %d base names but %d dir indexes", errRPMHeader, len(baseNames), len(dirIndexes))
	}
	for i, bn := range baseNames {
		if int(dirIndexes[i]) >= len(dirNames) {
			return rpmPackage{}, fmt.Errorf("%w: dir index %d out of %d", errRPMHeader, dirIndexes[i], len(dirNames))
		}
		p.files = append(p.files, cleanAbs(dirNames[dirIndexes[i]]+bn))
	}
	for _, f := range oldFiles {
		p.files = append(p.files, cleanAbs(f))
	}
	return p, nil
}

func cleanAbs(p string) string { return path.Clean("/" + p) }

// sourceRPMName turns "openssl-libs-3.0.7-25.el9.src.rpm" into the source
// package's name, "openssl-libs": the last two dash-separated fields are
// its version and release.
func sourceRPMName(s string) string {
	s = strings.TrimSuffix(s, ".rpm")
	s = strings.TrimSuffix(strings.TrimSuffix(s, ".src"), ".nosrc")
	for range 2 {
		i := strings.LastIndexByte(s, '-')
		if i <= 0 {
			return ""
		}
		s = s[:i]
	}
	return s
}

func rpmString(d []byte, typ uint32) (string, error) {
	if typ != rpmTypeString && typ != rpmTypeI18NString && typ != rpmTypeStrArray {
		return "", fmt.Errorf("%w: type %d where a string belongs", errRPMHeader, typ)
	}
	i := bytes.IndexByte(d, 0)
	if i < 0 {
		return "", fmt.Errorf("%w: unterminated string", errRPMHeader)
	}
	return string(d[:i]), nil
}

func rpmStrings(d []byte, typ, count uint32) ([]string, error) {
	if typ != rpmTypeStrArray && typ != rpmTypeI18NString {
		return nil, fmt.Errorf("%w: type %d where a string array belongs", errRPMHeader, typ)
	}
	// Each string takes at least its NUL byte, which bounds count.
	if uint64(count) > uint64(len(d)) {
		return nil, fmt.Errorf("%w: %d strings in %d bytes", errRPMHeader, count, len(d))
	}
	out := make([]string, 0, count)
	for range count {
		i := bytes.IndexByte(d, 0)
		if i < 0 {
			return nil, fmt.Errorf("%w: unterminated string", errRPMHeader)
		}
		out = append(out, string(d[:i]))
		d = d[i+1:]
	}
	return out, nil
}

func rpmInt32s(d []byte, typ, count uint32) ([]uint32, error) {
	if typ != rpmTypeInt32 {
		return nil, fmt.Errorf("%w: type %d where an int32 belongs", errRPMHeader, typ)
	}
	if uint64(count)*4 > uint64(len(d)) {
		return nil, fmt.Errorf("%w: %d int32s in %d bytes", errRPMHeader, count, len(d))
	}
	out := make([]uint32, count)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(d[i*4:])
	}
	return out, nil
}
