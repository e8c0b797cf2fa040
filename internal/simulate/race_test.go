//go:build race

package simulate_test

// raceEnabled: the race detector slows the store and the simulated fleet
// tenfold, so under -race the scenario tests run one seed each (the race
// detector looks at the same code paths); .ci/run also runs this package
// without -race, at full size.
const raceEnabled = true
