package source

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// blob is one layer as the image stores it: gzip, zstd or a plain tar.
// Open may be called more than once and from several goroutines; each
// reader starts at the blob's beginning. Reading a reader to its end
// verifies the blob's digest where the store can (registries).
type blob interface {
	Open() (io.ReadCloser, error)
	// Size is the stored size in bytes, -1 when unknown.
	Size() int64
}

// compressedBlob is a go-containerregistry layer's stored bytes.
type compressedBlob struct{ l v1.Layer }

var _ blob = compressedBlob{}

func (b compressedBlob) Open() (io.ReadCloser, error) { return b.l.Compressed() }

func (b compressedBlob) Size() int64 {
	n, err := b.l.Size()
	if err != nil {
		return -1
	}
	return n
}

// archiveBlob is a layer file inside a docker save archive, read in place:
// go-containerregistry would re-compress a layer stored uncompressed.
type archiveBlob struct {
	file         string
	offset, size int64
}

var _ blob = archiveBlob{}

func (b archiveBlob) Open() (io.ReadCloser, error) {
	f, err := os.Open(b.file)
	if err != nil {
		return nil, err
	}
	return sectionFile{io.NewSectionReader(f, b.offset, b.size), f}, nil
}

// sectionFile reads a part of a file, at offsets too.
type sectionFile struct {
	*io.SectionReader
	io.Closer
}

func (b archiveBlob) Size() int64 { return b.size }

// archiveLayers finds the layer files a docker archive's manifest names,
// following the archive's own links between members as docker writes them
// (several tags sharing a layer).
func archiveLayers(file string, names []string) ([]blob, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type member struct {
		offset, size int64
		link         string
	}
	members := map[string]member{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		// archive/tar reads whole 512-byte blocks and nothing more, so
		// after Next the file offset is where the member's data starts.
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		m := member{offset: off, size: hdr.Size}
		if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
			m.link = path.Join(path.Dir(path.Clean(hdr.Name)), path.Clean(hdr.Linkname))
			if hdr.Typeflag == tar.TypeLink {
				m.link = path.Clean(hdr.Linkname)
			}
		}
		members[path.Clean(hdr.Name)] = m
	}
	var out []blob
	for _, n := range names {
		m, ok := members[path.Clean(n)]
		for hops := 0; ok && m.link != "" && hops < 8; hops++ {
			m, ok = members[m.link]
		}
		if !ok || m.link != "" {
			return nil, fmt.Errorf("%s: layer %s is not in the archive", file, n)
		}
		out = append(out, archiveBlob{file: file, offset: m.offset, size: m.size})
	}
	return out, nil
}

// uncompressed returns a layer's tar stream, decompressing by what its
// first bytes say rather than by media type (docker archives carry none),
// with klauspost/compress, which inflates faster than the standard
// library.
func uncompressed(rc io.ReadCloser) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(rc, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		rc.Close()
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return readCloser{zr, func() error { zr.Close(); return rc.Close() }}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return readCloser{zr, func() error { zr.Close(); return rc.Close() }}, nil
	}
	return readCloser{br, rc.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// readahead reads its source in its own goroutine, a few chunks ahead of
// the reader: decompressing one layer then overlaps with writing out the
// one before it and with the writes of its own entries.
type readahead struct {
	src    io.ReadCloser
	full   chan []byte
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	cur    []byte
	last   []byte
	err    error // the source's error, set before full is closed
	closed sync.Once
}

const (
	readaheadChunk  = 256 << 10
	readaheadChunks = 16
)

func newReadahead(src io.ReadCloser) *readahead {
	r := &readahead{
		src:  src,
		full: make(chan []byte, readaheadChunks),
		free: make(chan []byte, readaheadChunks),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range readaheadChunks {
		r.free <- make([]byte, readaheadChunk)
	}
	go r.fill()
	return r
}

func (r *readahead) fill() {
	defer close(r.done)
	defer close(r.full)
	for {
		var buf []byte
		select {
		case buf = <-r.free:
		case <-r.stop:
			return
		}
		n, err := io.ReadFull(r.src, buf)
		if n > 0 {
			select {
			case r.full <- buf[:n]:
			case <-r.stop:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			r.err = err
			return
		}
	}
}

func (r *readahead) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.last != nil {
			r.free <- r.last[:cap(r.last)]
			r.last = nil
		}
		buf, ok := <-r.full
		if !ok {
			return 0, r.err
		}
		r.cur, r.last = buf, buf
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Close stops the goroutine, waits for it and closes the source.
func (r *readahead) Close() error {
	var err error
	r.closed.Do(func() {
		close(r.stop)
		<-r.done
		err = r.src.Close()
	})
	return err
}
