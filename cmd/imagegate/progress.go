package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/source"
)

// progressLine shows how reading an image's layers goes on one line of a
// terminal, redrawn at most ten times a second and erased when done.
type progressLine struct {
	w     io.Writer
	start time.Time

	mu       sync.Mutex
	drawn    time.Time
	layers   int
	fetched  map[int]bool
	cached   int
	fetching map[int]int64 // bytes downloaded so far, per layer
	unpacked map[int]bool
	reading  map[int]int64 // stored bytes unpacked so far, per layer
	total    int64         // stored bytes of all layers seen
	totals   map[int]int64
}

// newProgress returns the progress callback for source.Options and the
// function that erases the line, or nil and a no-op when w is not a
// terminal (or -v logs instead).
func newProgress(w io.Writer, verbose bool) (func(source.Event), func()) {
	f, ok := w.(*os.File)
	if !ok || verbose {
		return nil, func() {}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil, func() {}
	}
	p := &progressLine{w: w, start: time.Now(), fetched: map[int]bool{}, fetching: map[int]int64{},
		unpacked: map[int]bool{}, reading: map[int]int64{}, totals: map[int]int64{}}
	return p.event, p.erase
}

func (p *progressLine) event(e source.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.layers = e.Layers
	if e.Total > 0 && p.totals[e.Layer] == 0 {
		p.totals[e.Layer] = e.Total
		p.total += e.Total
	}
	switch e.Kind {
	case source.EventFetching:
		p.fetching[e.Layer] = e.Bytes
	case source.EventFetched:
		p.fetched[e.Layer] = true
		if e.Cached {
			p.cached++
		}
	case source.EventUnpacking:
		p.reading[e.Layer] = e.Bytes
	case source.EventUnpacked:
		p.unpacked[e.Layer] = true
	}
	if now := time.Now(); now.Sub(p.drawn) >= 100*time.Millisecond || e.Kind == source.EventUnpacked {
		p.drawn = now
		p.draw(now)
	}
}

func (p *progressLine) draw(now time.Time) {
	var down, read int64
	for _, n := range p.fetching {
		down += n
	}
	for _, n := range p.reading {
		read += n
	}
	secs := max(now.Sub(p.start).Seconds(), 0.001)
	line := fmt.Sprintf("layers: %d/%d unpacked", len(p.unpacked), p.layers)
	if len(p.fetched) > 0 || len(p.fetching) > 0 {
		line += fmt.Sprintf(", %d/%d fetched (%d cached), %s downloaded", len(p.fetched), p.layers, p.cached, mb(down))
	}
	line += fmt.Sprintf(", %s of %s read, %s/s", mb(read), mb(p.total), mb(int64(float64(read+down)/secs)))
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

func (p *progressLine) erase() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.drawn.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
