package ospkg

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"syscall"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// readImageFile reads a file inside the image. found is false, with a nil
// error, when it does not exist (or a directory on its way is a file).
func readImageFile(t *source.Tree, p string) (data []byte, found bool, err error) {
	data, err = t.ReadFile(p)
	if notExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	return data, true, nil
}

func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

type dirFile struct {
	name string
	data []byte
}

// readDirFiles reads the regular files of a directory inside the image
// whose names match, sorted by name. A missing directory is no error; a
// file that cannot be read becomes a warning.
func readDirFiles(t *source.Tree, dir string, match func(name string) bool) ([]dirFile, []string) {
	ents, err := t.ReadDir(dir)
	if notExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, []string{fmt.Sprintf("read %s: %v", dir, err)}
	}
	var (
		out   []dirFile
		warns []string
	)
	for _, e := range ents {
		// Only regular files: a link in an image must never make the scan
		// read a file of this machine.
		if !e.Type().IsRegular() || !match(e.Name()) {
			continue
		}
		b, err := t.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			warns = append(warns, fmt.Sprintf("read %s/%s: %v", dir, e.Name(), err))
			continue
		}
		out = append(out, dirFile{name: e.Name(), data: b})
	}
	return out, warns
}

// sortPackages puts packages in the snapshot's order: by type, name,
// architecture, then version.
func sortPackages(p []snapshot.Package) {
	slices.SortFunc(p, func(a, b snapshot.Package) int {
		return cmp.Or(
			cmp.Compare(a.Type, b.Type),
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Arch, b.Arch),
			cmp.Compare(a.Version, b.Version),
			cmp.Compare(a.SourceName, b.SourceName),
		)
	})
}
