package sqlite_test

import (
	"os"
	"testing"

	"github.com/imagegate/imagegate/internal/store/storetest"
)

func TestSeedForProfiling(t *testing.T) {
	path := os.Getenv("SEED_DB")
	if path == "" {
		t.Skip("SEED_DB not set")
	}
	db := mustOpen(t, path)
	storetest.SeedTelemetry(t, db, 1_000_000, storetest.DefaultFleet)
}
