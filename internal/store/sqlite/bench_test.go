package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/internal/store/storetest"
)

func BenchmarkAppendEvents(b *testing.B) {
	db := mustOpen(b, filepath.Join(b.TempDir(), "imagegate.db"))
	storetest.BenchAppendEvents(b, db, 500)
}

func BenchmarkAssignRun(b *testing.B) {
	db := mustOpen(b, filepath.Join(b.TempDir(), "imagegate.db"))
	storetest.BenchAssignRun(b, db)
}

func BenchmarkAssignRunParallel(b *testing.B) {
	db := mustOpen(b, filepath.Join(b.TempDir(), "imagegate.db"))
	storetest.BenchAssignRunParallel(b, db)
}
