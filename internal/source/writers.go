package source

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Writing a layer's regular files is most of extraction's system time
// (creating an inode and its directory entry), and a layer lists each
// directory's files together. Files small enough to be held are
// therefore created and written by a few writer goroutines while the
// layer goes on being read, so that the kernel's work spreads over the
// cores decompression leaves free.
//
// Order. A file is handed to a writer only where nothing can be at its
// path yet, so that what the writer does cannot depend on what the
// entries around it do: its parent is a directory this layer created
// (fresh), and no entry of this layer named the path before. Everything
// that could observe or change a file still being written waits for the
// writers first (wait): an entry at the same path, a parent resolved
// through it, a hard link to it, dropping directory handles (every
// removal and whiteout does), Finish and the end of the layer. The
// writers use the parent's handle, which stays open until then. The
// result is the same tree, and the same refusals, as writing in order.
const (
	// writerMax is the largest file handed to a writer; larger ones
	// are written in order, from the stream.
	writerMax = 256 << 10
	// writerQueue bounds the files read ahead of their writing (and so
	// the memory they take: writerQueue × writerMax at most).
	writerQueue = 32
)

// fileJob is one file for a writer.
type fileJob struct {
	pfd      int
	base, p  string
	entry    string // the tar entry's name, for errors
	layer    int
	want     fs.FileMode
	uid, gid int
	data     []byte
	buf      *[]byte
	seq      int // the entry's number in the image, to report the first error
	err      error
}

// writers is the pool; the zero value writes nothing in the background.
type writers struct {
	jobs    chan *fileJob
	bufs    chan *[]byte
	wg      sync.WaitGroup // files handed out and not yet written
	mu      sync.Mutex
	failed  []*fileJob  // guarded by mu
	broken  atomic.Bool // a writer failed: the next entry waits and reports it
	pending map[string]struct{}
	fresh   map[string]struct{}
	err     error // the first writer error, reported by the next entry
}

func (e *Extractor) startWriters() {
	n := min(runtime.GOMAXPROCS(0), 4)
	w := &e.w
	w.jobs = make(chan *fileJob, writerQueue)
	w.bufs = make(chan *[]byte, writerQueue)
	for range writerQueue {
		b := make([]byte, 0, writerMax)
		w.bufs <- &b
	}
	w.pending = map[string]struct{}{}
	w.fresh = map[string]struct{}{}
	jobs := w.jobs // stopWriters clears the field
	for range n {
		go func() {
			for j := range jobs {
				j.err = e.writeFile(j.pfd, j.base, j.p, j.want, j.uid, j.gid, j.data)
				j.data = nil
				w.bufs <- j.buf
				if j.err != nil {
					w.mu.Lock()
					w.failed = append(w.failed, j)
					w.mu.Unlock()
					w.broken.Store(true)
				}
				w.wg.Done()
			}
		}()
	}
}

// stopWriters waits for the writers and ends them.
func (e *Extractor) stopWriters() {
	if e.w.jobs == nil {
		return
	}
	e.wait()
	close(e.w.jobs)
	e.w.jobs = nil
}

// wait returns once every file handed to a writer is written, and keeps
// the first writer error (by entry order) for the caller to report.
func (e *Extractor) wait() {
	w := &e.w
	if w.jobs == nil || len(w.pending) == 0 {
		return
	}
	w.wg.Wait()
	clear(w.pending)
	w.mu.Lock()
	failed := w.failed
	w.failed = nil
	w.mu.Unlock()
	if len(failed) > 0 && w.err == nil {
		j := slices.MinFunc(failed, func(a, b *fileJob) int { return cmp.Compare(a.seq, b.seq) })
		w.err = attributed{fmt.Errorf("layer %d entry %q: %w", j.layer, j.entry, j.err)}
	}
}

// failed reports a writer's error as soon as one is known.
func (e *Extractor) failed() error {
	if e.w.broken.Load() {
		e.wait()
	}
	return e.w.err
}

// attributed is an error that already names its layer and entry.
type attributed struct{ error }

func (a attributed) Unwrap() error { return a.error }

// waitFor waits for the writers when p (resolved) is a file still being
// written.
func (e *Extractor) waitFor(p string) {
	if _, ok := e.w.pending[p]; ok {
		e.wait()
	}
}

// handOff gives a regular file to a writer when the rules above allow,
// reading its contents from r first; it reports false (having read
// nothing) when the file must be written in order.
func (e *Extractor) handOff(pfd int, base, parent, p string, size int64, entry string, want fs.FileMode, uid, gid int, read func(dst *[]byte) error) (bool, error) {
	w := &e.w
	if w.jobs == nil || size > writerMax {
		return false, nil
	}
	if _, ok := w.fresh[parent]; !ok {
		return false, nil
	}
	if _, ok := e.seen[p]; ok {
		return false, nil
	}
	buf := <-w.bufs
	if err := read(buf); err != nil {
		w.bufs <- buf
		return true, err
	}
	e.seen[p] = struct{}{}
	w.pending[p] = struct{}{}
	w.wg.Add(1)
	w.jobs <- &fileJob{pfd: pfd, base: base, p: p, entry: entry, layer: e.layer, want: want, uid: uid, gid: gid, data: *buf, buf: buf, seq: e.entries}
	return true, nil
}

// writeFile creates the new file base in pfd with its final mode and
// owner and writes data into it.
func (e *Extractor) writeFile(pfd int, base, p string, want fs.FileMode, uid, gid int, data []byte) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(want.Perm()))
	if err != nil {
		return pathErr("open", p, err)
	}
	for b := data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return pathErr("write", p, err)
		}
		b = b[n:]
	}
	return e.finishFile(fd, p, want, uid, gid)
}
