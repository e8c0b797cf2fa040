package postgres

import "github.com/imagegate/imagegate/internal/store/batch"

// RunWriter is the batch.Writer behind AssignRun.
func (db *DB) RunWriter() batch.Writer { return runRows{db} }
