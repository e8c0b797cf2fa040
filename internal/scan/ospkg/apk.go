package ospkg

import (
	"bytes"
	"strings"

	"github.com/imagegate/imagegate/internal/snapshot"
)

// apkInstalled are where apk-tools keeps its database: /lib/apk/db in
// Alpine up to now, /usr/lib/apk/db with apk-tools 3 on usr-merged roots.
var apkInstalled = []string{"/lib/apk/db/installed", "/usr/lib/apk/db/installed"}

const apkType = snapshot.PackageAPK

// ParseAPKInstalled parses apk-tools' installed database: paragraphs of
// "X:value" lines separated by blank lines, where P is the name, V the
// version, A the architecture, o the origin (source) package, and each
// R (file) line belongs to the directory named by the F line before it.
// It returns the packages, sorted, the owner of every file, and a warning
// for paragraphs that name no package.
func ParseAPKInstalled(data []byte) ([]snapshot.Package, *Owners, []string) {
	var (
		pkgs    []snapshot.Package
		owners  = &Owners{}
		skipped int
		cur     snapshot.Package
		files   []string
		dir     string
	)
	flush := func() {
		switch {
		case cur.Name != "" && cur.Version != "":
			if cur.SourceName == cur.Name {
				cur.SourceName = ""
			}
			cur.Type = apkType
			pkgs = append(pkgs, cur)
			for _, f := range files {
				owners.add(f, cur.Name)
			}
		case cur != (snapshot.Package{}) || len(files) > 0:
			skipped++
		}
		cur, files, dir = snapshot.Package{}, nil, ""
	}
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			flush()
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			continue
		}
		v := strings.TrimSpace(string(line[2:]))
		switch line[0] {
		case 'P':
			cur.Name = v
		case 'V':
			cur.Version = v
		case 'A':
			cur.Arch = v
		case 'o':
			cur.SourceName = v
		case 'F':
			dir = v
			if v != "" {
				files = append(files, cleanAbs(v))
			}
		case 'R':
			if v != "" {
				files = append(files, cleanAbs(dir+"/"+v))
			}
		}
	}
	flush()
	sortPackages(pkgs)
	return pkgs, owners, skippedWarning("apk installed", skipped)
}
