package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/imagegate/imagegate/internal/config"
)

// controllerHolder is this replica's name in the controller lease, and the
// function that lets go of it at exit. A name that survives a restart lets
// a replica killed with -9 take its own lease back at once; two live
// replicas must never share one, or both would lead. So: the configured
// name (the operator vouches for it); for SQLite the host and the database
// file, held exclusively by a flock on a file beside it (the kernel drops
// it when the process dies, however it dies); otherwise, or when another
// process holds that lock, host and pid, which waits for the lease to lapse.
func controllerHolder(cfg config.Config, sqlitePath string, log *slog.Logger) (string, func()) {
	host, _ := os.Hostname()
	pid := fmt.Sprintf("%s/%d", host, os.Getpid())
	if cfg.Controller.Replica != "" {
		return cfg.Controller.Replica, func() {}
	}
	if sqlitePath == "" {
		return pid, func() {}
	}
	abs, err := filepath.Abs(sqlitePath)
	if err != nil {
		return pid, func() {}
	}
	f, err := os.OpenFile(abs+".replica-lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		log.Warn("replica lock; a restart waits for the controller lease to lapse", "err", err)
		return pid, func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		log.Warn("another process serves this SQLite database; naming this replica by its pid", "db", abs)
		return pid, func() {}
	}
	return host + ":" + abs, func() { f.Close() }
}
