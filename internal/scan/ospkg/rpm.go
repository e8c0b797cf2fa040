package ospkg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"

	// Pure Go SQLite: imagegate is built without cgo.
	_ "modernc.org/sqlite"
)

// rpmDirs hold rpm's database: /var/lib/rpm traditionally, and
// /usr/lib/sysimage/rpm since rpm 4.16 (Fedora and openSUSE link
// /var/lib/rpm there).
var rpmDirs = []string{"/var/lib/rpm", "/usr/lib/sysimage/rpm"}

// rpm database files by backend, in the order rpm itself prefers them.
const (
	rpmSQLite = "rpmdb.sqlite" // rpm >= 4.16 default: Fedora 33+, RHEL 9
	rpmNDB    = "Packages.db"  // openSUSE, SLES 15
	rpmBDB    = "Packages"     // Berkeley DB: RHEL <= 8, CentOS, Amazon Linux 2
)

// readRPM reads the first rpm database found.
func readRPM(ctx context.Context, t *source.Tree, owners *Owners) (pkgs []snapshot.Package, warns []string, err error) {
	seen := map[string]bool{}
	for _, dir := range rpmDirs {
		// /var/lib/rpm is often a link to /usr/lib/sysimage/rpm; read
		// the database once.
		real, err := t.Resolve(dir)
		if notExist(err) {
			continue
		}
		if err != nil {
			warns = append(warns, err.Error())
			continue
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		for _, backend := range []string{rpmSQLite, rpmNDB, rpmBDB} {
			p := path.Join(real, backend)
			fi, err := t.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			inImage := dir + "/" + backend
			var blobs [][]byte
			switch backend {
			case rpmSQLite:
				blobs, err = rpmSQLiteBlobs(ctx, t, p)
			case rpmBDB:
				blobs, err = rpmBDBBlobs(t, p)
			case rpmNDB:
				err = fmt.Errorf("the ndb format (openSUSE) is not supported yet")
			}
			if err != nil {
				return nil, append(warns, fmt.Sprintf("read rpm database %s: %v; its packages are not in the snapshot", inImage, err)), nil
			}
			pkgs, w := rpmPackages(blobs, inImage, owners)
			return pkgs, append(warns, w...), nil
		}
	}
	return nil, warns, nil
}

func rpmPackages(blobs [][]byte, db string, owners *Owners) ([]snapshot.Package, []string) {
	var (
		pkgs  []snapshot.Package
		bad   int
		first error
	)
	for _, b := range blobs {
		p, err := parseRPMHeader(b)
		if err != nil {
			if first == nil {
				first = err
			}
			bad++
			continue
		}
		// gpg-pubkey entries are the keys rpm trusts, not software.
		if p.pkg.Name == "gpg-pubkey" {
			continue
		}
		pkgs = append(pkgs, p.pkg)
		for _, f := range p.files {
			owners.add(f, p.pkg.Name)
		}
	}
	var warns []string
	if bad > 0 {
		warns = append(warns, fmt.Sprintf("rpm database %s: %d unreadable headers skipped (first: %v)", db, bad, first))
	}
	return pkgs, warns
}

func rpmBDBBlobs(t *source.Tree, p string) ([][]byte, error) {
	f, err := t.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return bdbValues(f, fi.Size())
}

// rpmSQLiteBlobs reads every header from rpm's SQLite database without
// writing anything beside it: the file is opened immutable. rpm leaves a
// write-ahead log only while it runs or after a crash; then the database
// and its log are copied to a temporary folder so SQLite can apply it
// there, as is a database of an image held in memory (SQLite reads
// files only).
func rpmSQLiteBlobs(ctx context.Context, t *source.Tree, inImage string) (_ [][]byte, err error) {
	query := "mode=ro&immutable=1"
	fi, err := t.Stat(inImage + "-wal")
	wal := err == nil && fi.Size() > 0
	p, err := t.HostPath(inImage)
	if errors.Is(err, source.ErrNotOnDisk) || wal {
		tmp, err := os.MkdirTemp("", "imagegate-rpmdb-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		suffixes := []string{""}
		if wal {
			suffixes = append(suffixes, "-wal")
		}
		for _, suffix := range suffixes {
			if err := copyFile(t, inImage+suffix, filepath.Join(tmp, "rpmdb.sqlite"+suffix)); err != nil {
				return nil, err
			}
		}
		p, query = filepath.Join(tmp, "rpmdb.sqlite"), ""
	} else if err != nil {
		return nil, err
	}
	dsn := (&url.URL{Scheme: "file", Path: p, RawQuery: query}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	rows, err := db.QueryContext(ctx, "SELECT blob FROM Packages ORDER BY hnum")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var blobs [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		blobs = append(blobs, b)
	}
	return blobs, rows.Err()
}

func copyFile(t *source.Tree, from, to string) error {
	src, err := t.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
