package source_test

import (
	"archive/tar"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// BenchmarkApplyLayer extracts a layer made from one of this machine's
// CPython builds (about 9,000 files, 300 MB), streamed from a file.
func BenchmarkApplyLayer(b *testing.B) {
	src := testenv.RequirePython(b, "3.12.1")
	layer := filepath.Join(b.TempDir(), "layer.tar")
	size := writeTar(b, src, layer)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		f, err := os.Open(layer)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		x, err := source.NewExtractor(dir, source.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := x.ApplyLayer(context.Background(), f); err != nil {
			b.Fatal(err)
		}
		if err := x.Finish(); err != nil {
			b.Fatal(err)
		}
		x.Close()
		f.Close()
	}
}

// writeTar writes the tree at src as a tar file and returns its size.
func writeTar(tb testing.TB, src, dst string) int64 {
	tb.Helper()
	f, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		h.Name = rel
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			r, err := os.Open(p)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = io.Copy(tw, r)
			return err
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}
