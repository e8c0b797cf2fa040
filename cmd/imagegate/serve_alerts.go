package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/config"
	"github.com/imagegate/imagegate/internal/rollout"
)

// serveAlerts builds what serve needs to tell people about decisions: the
// outbox Alerter over the configured targets (queueing nothing when there
// are none) and the user reports that may escalate through it.
func serveAlerts(svc *rollout.Service, st rollout.Store, cfg config.Config) (*alert.Outbox, *rollout.Reports, error) {
	outbox, err := alert.NewOutbox(st, cfg.AlertTargets(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("alerts: %w", err)
	}
	reports, err := rollout.NewReports(svc, st, rollout.ReportOptions{Policy: cfg.ReportPolicy(), Alerter: outbox})
	if err != nil {
		return nil, nil, err
	}
	return outbox, reports, nil
}

// startSender runs this replica's alert sender until the returned stop is
// called; stop waits for the sender, which records the outcome of a POST
// under way before it returns. Every replica runs one: the outbox's claims
// keep them off each other's alerts, and one left over by a dead replica
// is sent by the others.
func startSender(ctx context.Context, st rollout.OutboxStore, holder, baseURL string, log *slog.Logger) (stop func(), err error) {
	s, err := alert.NewSender(st, alert.SenderOptions{Holder: holder, BaseURL: baseURL, Logger: log})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(sctx)
	}()
	return func() { cancel(); <-done }, nil
}

// startNotices fans change notices out every interval (default 5s) until
// the returned stop is called. Every replica runs it: each notice's
// outbox key names its rollout and subscription, so two replicas queue it
// once.
func startNotices(ctx context.Context, n *rollout.Notices, interval time.Duration) (stop func()) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(nctx, interval)
	}()
	return func() { cancel(); <-done }
}
