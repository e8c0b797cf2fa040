package postgres_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/store/storetest"
)

func BenchmarkAppendObservations(b *testing.B) {
	db := mustOpen(b, freshSchema(b))
	storetest.BenchAppendObservations(b, db, 500)
}

// BenchmarkRingTelemetry reads one ring's aggregates with 1M events and
// up to 5,000 live signatures in the store (seeding takes a while).
func BenchmarkRingTelemetry(b *testing.B) {
	db := mustOpen(b, freshSchema(b))
	r := storetest.SeedTelemetry(b, db, 1_000_000, storetest.DefaultFleet)
	storetest.BenchRingTelemetry(b, db, r)
}
