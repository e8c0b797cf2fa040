package postgres_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/store/storetest"
)

func BenchmarkAppendEvents(b *testing.B) {
	db := mustOpen(b, freshSchema(b))
	storetest.BenchAppendEvents(b, db, 500)
}

func BenchmarkAssignRun(b *testing.B) {
	db := mustOpen(b, freshSchema(b))
	storetest.BenchAssignRun(b, db)
}

func BenchmarkAssignRunParallel(b *testing.B) {
	db := mustOpen(b, freshSchema(b))
	storetest.BenchAssignRunParallel(b, db)
}

func BenchmarkAssignRunParallelStored(b *testing.B) {
	db := mustOpen(b, freshSchema(b))
	storetest.BenchAssignRunParallelStored(b, db)
}
