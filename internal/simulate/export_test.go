package simulate

import "time"

// Test hooks for the peers' statistics and gates.
var (
	KayentaHigh   = kayentaHigh
	HodgesLehmann = hodgesLehmann
)

// Minute is a minute's counts as a peer sees them.
type Minute = minute

// Observe feeds a threshold gate, as the simulator does once a minute.
type Observer interface {
	Observe(inRing time.Duration, ringChanged bool, m Minute) bool
}

type observer struct{ p peer }

func (o observer) Observe(inRing time.Duration, ringChanged bool, m Minute) bool {
	return o.p.observe(inRing, ringChanged, m)
}

// NewThresholdGate is the threshold peer with the given settings.
func NewThresholdGate(window time.Duration, diff float64, minJobs int64, limit int) Observer {
	return observer{&thresholdGate{window: window, diff: diff, minJobs: minJobs, limit: limit}}
}
