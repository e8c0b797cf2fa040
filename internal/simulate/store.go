package simulate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/store/postgres"
	"github.com/imagegate/imagegate/internal/store/sqlite"
)

// Opener opens a fresh, empty store for one seed's run and returns the
// function that closes and removes it. Seeds may run at once: every call
// must return a store of its own.
type Opener func(ctx context.Context, seed uint64) (rollout.Store, func(), error)

// SQLiteOpener opens each seed's store in a new temporary directory under
// dir (the system's when empty), removed when closed.
func SQLiteOpener(dir string) Opener {
	return func(ctx context.Context, seed uint64) (rollout.Store, func(), error) {
		tmp, err := os.MkdirTemp(dir, "imagegate-simulate-"+strconv.FormatUint(seed, 10)+"-")
		if err != nil {
			return nil, nil, fmt.Errorf("create a temporary directory for the store: %w", err)
		}
		st, err := sqlite.Open(ctx, filepath.Join(tmp, "imagegate.db"))
		if err != nil {
			os.RemoveAll(tmp)
			return nil, nil, err
		}
		return st, func() {
			st.Close()
			os.RemoveAll(tmp)
		}, nil
	}
}

// PostgresOpener opens each seed's store in a new schema of the database
// dsn names (a postgres:// URL), dropped when closed.
func PostgresOpener(dsn string) Opener {
	return func(ctx context.Context, seed uint64) (rollout.Store, func(), error) {
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, nil, fmt.Errorf("--db: give a postgres:// URL: %w", rollout.ErrInvalid)
		}
		var b [4]byte
		rand.Read(b[:])
		schema := fmt.Sprintf("simulate_%d_%s", seed, hex.EncodeToString(b[:]))
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("connect to postgres %s: %w", u.Host, err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			return nil, nil, fmt.Errorf("create schema %s (the user needs CREATE on the database): %w", schema, err)
		}
		drop := func() {
			c, err := pgx.Connect(context.WithoutCancel(ctx), dsn)
			if err != nil {
				return
			}
			defer c.Close(context.WithoutCancel(ctx))
			c.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		st, err := postgres.Open(ctx, u.String())
		if err != nil {
			drop()
			return nil, nil, err
		}
		return st, func() {
			st.Close()
			drop()
		}, nil
	}
}
