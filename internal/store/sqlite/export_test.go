package sqlite

import "context"

// WriterSynchronous reads the synchronous setting of the writer
// connection (2 is FULL), for tests that check relaxed commits restore it.
func (db *DB) WriterSynchronous(ctx context.Context) (int, error) {
	var v int
	err := db.wr.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&v)
	return v, err
}
