//go:build race

package rollout_test

// raceEnabled: under the race detector the pure-Go SQLite store runs about
// thirty times slower, so the long A/A stream stops once it has been
// through Ring 0's pass and the outage (the race detector has then seen
// every path of a tick); .ci/run also runs this package without -race,
// where the stream runs its whole length.
const raceEnabled = true
