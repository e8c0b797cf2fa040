package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultConnectTimeout bounds dialing and the start-up handshake when the
// DSN sets no connect_timeout. Without it a PostgreSQL that stopped
// answering (a dropped route, a frozen host) holds every request that
// needs a new connection for the kernel's TCP timeout, minutes, where a
// 503 after seconds lets clients retry elsewhere or fall back.
const DefaultConnectTimeout = 5 * time.Second

func withConnectTimeout(cfg *pgxpool.Config) {
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
}

// Unavailable reports whether err, from any method of db, is PostgreSQL
// failing rather than the request or a bug: the server unreachable or
// restarting (kill, failover, pg_ctl restart), out of disk or
// connections, read-only (a standby after a failover), an I/O error, a
// timeout, or the pool closed at shutdown. The reason names the cause
// without the DSN. The same call may succeed once the cause is gone: pgx
// drops a broken connection and the pool dials a new one. It looks at err
// alone (db may be nil).
func (db *DB) Unavailable(err error) (string, bool) {
	return unavailable(err)
}

func unavailable(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch code := pe.Code; {
		case code == "57P01" || code == "57P02" || code == "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return "database restarting", true
		case code == "53100": // disk_full
			return "database out of disk space", true
		case strings.HasPrefix(code, "53"): // out of memory, too many connections
			return "database out of resources", true
		case strings.HasPrefix(code, "08"): // connection exception
			return "database unreachable", true
		case strings.HasPrefix(code, "58"): // system error: I/O
			return "database I/O error", true
		case code == "25006": // read_only_sql_transaction: a standby
			return "database read-only", true
		}
		return "", false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return "database unreachable", true
	case pgconn.Timeout(err), errors.Is(err, context.DeadlineExceeded):
		return "database timed out", true
	case errors.As(err, &ne):
		return "database unreachable", true
	case strings.Contains(err.Error(), "closed pool"):
		// puddle.ErrClosedPool: Close ran, the server is stopping.
		return "database closed", true
	}
	return "", false
}
