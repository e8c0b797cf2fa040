package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Unavailable reports whether err, from any method of db, is the
// database's file system failing rather than the request or a bug: the
// disk (or quota, or file size limit) full, an I/O error, the file
// read-only or gone, the lock held past busy_timeout, or db closed at
// shutdown. SQLite rolls a failed write back whole, so the same call may
// succeed once the cause is gone. A corrupt file is not among them: that
// needs an operator, not a retry.
func (db *DB) Unavailable(err error) (string, bool) {
	return unavailable(err)
}

func unavailable(err error) (string, bool) {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL:
			return "database disk full", true
		case sqlite3.SQLITE_IOERR:
			return "database I/O error", true
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
			return "database file not writable", true
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return "database busy", true
		case sqlite3.SQLITE_NOMEM:
			return "database out of memory", true
		}
		return "", false
	}
	switch {
	case errors.Is(err, errLowDisk), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		return "database disk full", true
	case errors.Is(err, syscall.EIO):
		return "database I/O error", true
	case errors.Is(err, sql.ErrConnDone), err != nil && strings.Contains(err.Error(), "sql: database is closed"):
		// database/sql's errDBClosed is not exported: Close ran, the
		// server is stopping.
		return "database closed", true
	}
	return "", false
}

// MinFreeBytes is the free space below which Ready reports the database
// not ready: a batch of events or a snapshot takes a few hundred KiB of
// WAL, and a write that finds no room fails (with its transaction rolled
// back) rather than corrupting the file.
const MinFreeBytes = 1 << 20

var errLowDisk = errors.New("disk nearly full")

// Ready reads the database and checks the free space of the file system
// it is on, so /readyz fails while writes would, not only once they did.
func (db *DB) Ready(ctx context.Context) error {
	if _, err := db.Generation(ctx); err != nil {
		return err
	}
	dir := filepath.Dir(db.path)
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return fmt.Errorf("free space of %s: %w", dir, err)
	}
	// Bavail: what an unprivileged writer may use (root's reserve is not
	// the database's to count on).
	if free := fs.Bavail * uint64(fs.Bsize); free < MinFreeBytes {
		return fmt.Errorf("%w: %d bytes free on the file system of %s (at least %d needed): free space or grow it; writes resume by themselves",
			errLowDisk, free, dir, MinFreeBytes)
	}
	return nil
}
