package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/imagegate/imagegate/internal/config"
)

// controllerHolder is this replica's name in the controller lease, and the
// function that lets go of it at exit. A name that survives a restart lets
// a replica killed with -9 take its own lease back at once; two live
// replicas must never share one, or both would lead. So a name is derived
// only from something this process holds exclusively, which the kernel
// takes back when it dies however it dies:
//   - the configured name (the operator vouches for it);
//   - for SQLite the host and the database file, held by a flock on a
//     file beside it;
//   - otherwise the host (its name and machine id) and the TCP address
//     ln listens on: no second process on the host can bind it while this
//     one lives, and a restart binds it again. Not with port 0, whose
//     address changes on every start. Containers that share a host name
//     but not a network would share it (examples/serve.yaml says so);
//     even then the rollouts' revisions keep a decision from applying
//     twice;
//   - failing those, host and pid, which waits for the lease to lapse.
func controllerHolder(cfg config.Config, sqlitePath string, ln net.Listener, log *slog.Logger) (string, func()) {
	host, _ := os.Hostname()
	pid := fmt.Sprintf("%s/%d", host, os.Getpid())
	if cfg.Controller.Replica != "" {
		return cfg.Controller.Replica, func() {}
	}
	if sqlitePath == "" {
		if name, ok := listenerHolder(host, cfg.Listen, ln); ok {
			return name, func() {}
		}
		log.Info("controller lease named by process id: a restart waits for it to lapse (set controller.replica or a fixed --listen port)", "holder", pid)
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

// listenerHolder names a replica by host and bound TCP address, when the
// address was asked for with a fixed port. Two hosts may share a name
// (clones, "localhost"), so the machine id joins it where there is one.
func listenerHolder(host, listen string, ln net.Listener) (string, bool) {
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "0" || port == "" {
		return "", false
	}
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || addr.Port == 0 {
		return "", false
	}
	name := host
	if id, err := os.ReadFile("/etc/machine-id"); err == nil && len(strings.TrimSpace(string(id))) > 0 {
		sum := sha256.Sum256([]byte(strings.TrimSpace(string(id))))
		name += "#" + hex.EncodeToString(sum[:4])
	}
	return name + "/listen=" + addr.String(), true
}
