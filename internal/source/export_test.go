package source

import (
	"io"
	"testing/iotest"
)

// KeptPiece is a part of a file an in-memory tree kept, decoded.
type KeptPiece struct {
	Off  int64
	Data []byte
}

// Kept streams body through what an in-memory tree does with a regular
// file's contents, in reads of at most chunk bytes (a tar entry's data
// arrives in pieces of any size), and returns what it kept.
func Kept(name string, body []byte, chunk int) ([]KeptPiece, error) {
	b := newMemBuilder(nil, Options{})
	n := &mnode{}
	r := io.LimitReader(&chunked{body, chunk}, int64(len(body)))
	if err := b.contents(n, iotest.HalfReader(r), int64(len(body)), keepable(name)); err != nil {
		return nil, err
	}
	f := &memFile{n: n}
	var out []KeptPiece
	for i, p := range n.pieces {
		d, err := f.bytes(i)
		if err != nil {
			return nil, err
		}
		out = append(out, KeptPiece{p.off, append([]byte(nil), d...)})
	}
	return out, nil
}

type chunked struct {
	b     []byte
	chunk int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.b)
	c.b = c.b[n:]
	return n, nil
}
