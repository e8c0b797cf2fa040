package source

import "io"

// Event is one step of reading an image's layers, for a progress display.
type Event struct {
	Kind EventKind
	// Layer is the layer the event is about, from 1, of Layers.
	Layer, Layers int
	// Bytes so far and Total (-1 unknown) are stored (compressed) bytes.
	Bytes, Total int64
	// Cached is set on EventFetched when the layer was in the cache.
	Cached bool
}

// EventKind says what an Event reports.
type EventKind int

const (
	// EventFetching: Bytes of a registry layer have been downloaded.
	EventFetching EventKind = iota
	// EventFetched: a registry layer is in the cache.
	EventFetched
	// EventUnpacking: Bytes of the layer have been read and unpacked.
	EventUnpacking
	// EventUnpacked: the layer has been applied.
	EventUnpacked
)

func (o Options) progress() func(Event) {
	if o.Progress != nil {
		return o.Progress
	}
	return func(Event) {}
}

// progressReader reports the bytes read through it.
type progressReader struct {
	io.ReadCloser
	n      int64
	report func(n int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	k, err := p.ReadCloser.Read(b)
	if k > 0 {
		p.n += int64(k)
		p.report(p.n)
	}
	return k, err
}
