// Package ospkg reads what the OS says about itself inside an image: its
// os-release and its package databases (dpkg, apk, rpm), with the package
// that ships each path.
//
// It only reads files; nothing in the image is executed. Every database is
// outside input, possibly hostile: parsers check every length and offset
// and never follow a link out of the image.
//
// A dpkg package counts as installed when its Status is "<want> ok
// installed" (or has triggers pending): held packages are included,
// half-installed, unpacked, half-configured and config-files ones are not.
package ospkg

import (
	"context"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// Result is what the package databases of an image say.
type Result struct {
	// Packages are sorted by type, name, arch, version. Versions are the
	// package manager's full form: deb "1:1.2.13.dfsg-1" (epoch included
	// when set), rpm "EPOCH:VERSION-RELEASE" (epoch only when the header
	// has one), apk "1.2.3-r0".
	Packages []snapshot.Package
	// Owners tells which package ships which path; never nil.
	Owners *Owners
}

// Packages reads every OS package database present in the image: dpkg
// (/var/lib/dpkg/status with its updates/ journal, or distroless
// status.d/), apk (/lib/apk/db/installed) and rpm (SQLite or Berkeley DB,
// under /var/lib/rpm or /usr/lib/sysimage/rpm). An image with none (a tool
// folder, a scratch image) gives an empty Result.
//
// A database that exists but cannot be read, wholly or in part, is a
// warning naming the file, and the scan goes on with the others: one
// damaged database must not hide the rest of the image. The error is
// non-nil only when ctx ends.
func Packages(ctx context.Context, t *source.Tree) (Result, []string, error) {
	res := Result{Owners: &Owners{}}
	var warns []string

	deb, w, err := readDpkg(ctx, t, res.Owners)
	if err != nil {
		return Result{}, nil, err
	}
	res.Packages = append(res.Packages, deb...)
	warns = append(warns, w...)

	for _, p := range apkInstalled {
		data, found, err := readImageFile(t, p)
		if err != nil {
			warns = append(warns, err.Error())
			continue
		}
		if !found {
			continue
		}
		pkgs, owners, w := ParseAPKInstalled(data)
		res.Packages = append(res.Packages, pkgs...)
		for p, pkg := range owners.byPath {
			res.Owners.add(p, pkg)
		}
		warns = append(warns, w...)
		// On usr-merged roots both paths name one file.
		break
	}

	rpm, w, err := readRPM(ctx, t, res.Owners)
	if err != nil {
		return Result{}, nil, err
	}
	res.Packages = append(res.Packages, rpm...)
	warns = append(warns, w...)

	if err := ctx.Err(); err != nil {
		return Result{}, nil, err
	}
	sortPackages(res.Packages)
	return res, warns, nil
}
