package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/internal/store/storetest"
)

func BenchmarkAppendObservations(b *testing.B) {
	db := mustOpen(b, filepath.Join(b.TempDir(), "imagegate.db"))
	storetest.BenchAppendObservations(b, db, 500)
}

// BenchmarkRingTelemetry reads one ring's aggregates with 1M events and
// up to 5,000 live signatures in the store (seeding takes a while).
func BenchmarkRingTelemetry(b *testing.B) {
	db := mustOpen(b, filepath.Join(b.TempDir(), "imagegate.db"))
	r := storetest.SeedTelemetry(b, db, 1_000_000, storetest.DefaultFleet)
	storetest.BenchRingTelemetry(b, db, r)
}

// BenchmarkAnalysisTick is the telemetry gate's check of one ring with 1M
// events and up to 5,000 live signatures in the store (target < 100 ms).
func BenchmarkAnalysisTick(b *testing.B) {
	db := mustOpen(b, filepath.Join(b.TempDir(), "imagegate.db"))
	r := storetest.SeedTelemetry(b, db, 1_000_000, storetest.DefaultFleet)
	storetest.BenchAnalysisTick(b, db, r)
}
