package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/store/storetest"
)

// TestCrash kill -9s a process appending events; every batch it
// acknowledged survives, none is torn.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "imagegate.db")
	storetest.Crash(t, "TestCrashChild", path, 3, func() rollout.Store {
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

func TestCrashChild(t *testing.T) {
	storetest.CrashChild(t, func(path string) rollout.Store { return mustOpen(t, path) })
}
