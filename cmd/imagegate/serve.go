package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/config"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/postgres"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/tlscert"
)

type serveOptions struct {
	config   string
	listen   string
	db       string
	dataDir  string
	addrFile string
	external string
	tlsCert  string
	tlsKey   string
	getenv   func(string) string
}

func newServeCmd(g *globalOptions) *cobra.Command {
	opts := &serveOptions{getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane: the API, resolve, and the rollout controller",
		Long: `Run the control plane: the REST API under /api/v1 (OpenAPI at /api/v1/openapi.json),
/healthz, /readyz, /metrics, and the rollout controller (with several replicas on one
PostgreSQL database, exactly one runs it at a time).

Settings come from --config (YAML: listen, db, dataDir, rings, images, policies,
analysis, controller, externalURL, alerts, reports, tls; see examples/serve.yaml), then
IMAGEGATE_LISTEN, IMAGEGATE_DB, IMAGEGATE_DATA_DIR, IMAGEGATE_EXTERNAL_URL,
IMAGEGATE_TLS_CERT, IMAGEGATE_TLS_KEY, then flags.
With --tls-cert and --tls-key it serves HTTPS and HTTP/2; SIGHUP re-reads the pair
(a pair that fails to load is logged and the old one kept).
Every replica sends the alerts queued in the database's outbox (one POST per
decision and target, retried until acknowledged).
The database defaults to SQLite at DATA_DIR/imagegate.db; give --db postgres://...
for several replicas. At first start the admin token is IMAGEGATE_ADMIN_TOKEN, or one
is generated and printed once to stderr.
Stops gracefully on SIGTERM or interrupt.

` + exitHelpServe,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), g, opts, cmd.Flags().Changed, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.config, "config", "", "YAML config file (also IMAGEGATE_CONFIG)")
	f.StringVar(&opts.listen, "listen", ":8080", "address to listen on (host:port; port 0 picks a free one)")
	f.StringVar(&opts.db, "db", "", "SQLite file path or postgres:// URL (default DATA_DIR/imagegate.db)")
	f.StringVar(&opts.dataDir, "data-dir", "imagegate-data", "directory of the default SQLite database")
	f.StringVar(&opts.addrFile, "addr-file", "", "write the server's URL to this file once it listens (for scripts using port 0)")
	f.StringVar(&opts.external, "external-url", "", "the URL people reach this server at, for links in alerts (also IMAGEGATE_EXTERNAL_URL; default: the listen address)")
	f.StringVar(&opts.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key (also IMAGEGATE_TLS_CERT)")
	f.StringVar(&opts.tlsKey, "tls-key", "", "PEM private key of --tls-cert (also IMAGEGATE_TLS_KEY)")
	return cmd
}

// serveConfig merges the config file, the environment and the flags that
// were given, in that order of precedence (last wins).
func serveConfig(opts *serveOptions, changed func(string) bool) (config.Config, error) {
	return config.Load(opts.config, opts.getenv, config.Flags{
		Listen:  config.Flag{Value: opts.listen, Given: changed("listen")},
		DB:      config.Flag{Value: opts.db, Given: changed("db")},
		DataDir: config.Flag{Value: opts.dataDir, Given: changed("data-dir")},

		ExternalURL: config.Flag{Value: opts.external, Given: changed("external-url")},
		TLSCert:     config.Flag{Value: opts.tlsCert, Given: changed("tls-cert")},
		TLSKey:      config.Flag{Value: opts.tlsKey, Given: changed("tls-key")},
	})
}

func openStore(ctx context.Context, cfg config.Config) (rollout.Store, string, error) {
	if strings.HasPrefix(cfg.DB, "postgres://") || strings.HasPrefix(cfg.DB, "postgresql://") {
		st, err := postgres.Open(ctx, cfg.DB)
		return st, "postgres", err
	}
	path := cfg.DB
	if path == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, "", fmt.Errorf("create data dir: %w", err)
		}
		path = filepath.Join(cfg.DataDir, "imagegate.db")
	}
	st, err := sqlite.Open(ctx, path)
	return st, "sqlite " + path, err
}

func runServe(ctx context.Context, g *globalOptions, opts *serveOptions, changed func(string) bool, stderr io.Writer) error {
	cfg, err := serveConfig(opts, changed)
	if err != nil {
		return err
	}
	log := g.logger()
	// A pair that cannot be read is refused before anything starts.
	var pair *tlscert.Pair
	if cfg.TLS.Enabled() {
		if pair, err = tlscert.Load(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return err
		}
	}
	st, where, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()

	// The telemetry decision is on by default; the failure-rate gate joins
	// it when configured.
	telemetry := rollout.NewTelemetryHealth(st, cfg.Analysis.Policies(), log)
	health := rollout.AllOf{telemetry}
	if p := cfg.Policies; p.MaxFailureRate > 0 {
		minJobs := p.HealthMinJobs
		if minJobs == 0 {
			minJobs = 20
		}
		health = append(health, rollout.FailureRateHealth{Jobs: st, MaxFailureRate: p.MaxFailureRate, MinJobs: minJobs})
	}
	signer, err := rollout.NewStoredSigner(ctx, st, time.Now())
	if err != nil {
		return err
	}
	// The Notifier is bound to the outbox once serveAlerts has built it,
	// before the controller runs.
	notify := &lateNotifier{}
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{
		Health: rollout.NoticeGate{Next: health, Sent: st}, Analyzer: telemetry, Signer: signer, Notifier: notify, Logger: log,
		ExpeditedBakeFactor: cfg.Policies.ExpeditedBakeFactor, PinExpiryWarning: cfg.Policies.PinExpiryWarning,
		AllowUnknownGate: cfg.Policies.AllowUnknownGate,
	})
	if err != nil {
		return fmt.Errorf("start service: %w", err)
	}
	defer svc.Close()
	if err := svc.ApplyConfigRings(ctx, cfg.RingPlans()); err != nil {
		return err
	}
	if err := server.BootstrapAdmin(ctx, st, opts.getenv("IMAGEGATE_ADMIN_TOKEN"), stderr, time.Now()); err != nil {
		return err
	}

	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s/%d", host, os.Getpid())
	sqlitePath, _ := strings.CutPrefix(where, "sqlite ")
	if sqlitePath == where {
		sqlitePath = ""
	}
	// Listening comes first: the bound address may name this replica in
	// the controller lease (controllerHolder). Connections wait in the
	// kernel's queue until the server serves them.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (change --listen)", cfg.Listen, err)
	}
	defer ln.Close()
	replica, unlock := controllerHolder(cfg, sqlitePath, ln, log)
	defer unlock()
	ctl := rollout.NewController(svc, st, rollout.ControllerOptions{
		Holder: replica, Interval: cfg.Controller.Interval, LeaseTTL: cfg.Controller.LeaseTTL, Logger: log,
	})
	outbox, reports, err := serveAlerts(svc, st, cfg)
	if err != nil {
		return err
	}
	notify.n = rollout.AlertNotifier{Alerter: outbox}
	notices := rollout.NewNotices(svc, st, rollout.NoticeOptions{Logger: log})
	srv, err := server.New(server.Options{
		Service: svc, Store: st, Controller: ctl, Registry: server.NewRegistry(), Logger: log,
		TokenCacheTTL: cfg.Policies.TokenCacheTTL, Reports: reports,
		Verify:  rollout.NewVerifications(svc, st, rollout.VerifyOptions{Alerter: outbox}),
		Notices: notices, RateLimits: rateLimits(cfg.Limits), Sessions: st, ExternalURL: cfg.ExternalURL,
	})
	if err != nil {
		return err
	}
	scheme := "http://"
	if pair != nil {
		scheme = "https://"
	}
	url := scheme + ln.Addr().String()
	fmt.Fprintf(stderr, "imagegate: serving %s (database: %s)\n", url, where)
	if opts.addrFile != "" {
		if err := writeOutput(nil, opts.addrFile, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, url)
			return err
		}); err != nil {
			ln.Close()
			return err
		}
	}

	stopSender, err := startSender(ctx, st, holder, cfg.BaseURL(ln.Addr().String()), log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopSender()
	defer startNotices(ctx, notices, cfg.Controller.Interval)()

	ctlCtx, stopCtl := context.WithCancel(ctx)
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		ctl.Run(ctlCtx)
	}()
	to := cfg.Timeouts.Effective()
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: to.ReadHeader,
		ReadTimeout:       to.Read,
		WriteTimeout:      to.Write,
		IdleTimeout:       to.Idle,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	if pair != nil {
		hs.TLSConfig = pair.ServerConfig()
		defer reloadOnHangup(pair, log)()
		// ServeTLS, unlike Serve, sets HTTP/2 up.
		go func() { serveErr <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- hs.Serve(ln) }()
	}

	select {
	case err = <-serveErr:
	case <-ctx.Done():
	}
	// Release the controller lease first, so another replica takes over
	// at once, and while this one still holds its listening address: a
	// new process named by that address (controllerHolder) must not lead
	// beside a controller still finishing its pass. Then stop taking
	// requests and let running ones (event batches) finish.
	stopCtl()
	<-ctlDone
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if serr := hs.Shutdown(shCtx); serr != nil {
		log.Warn("shutdown", "err", serr)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func rateLimits(l config.LimitsConfig) server.RateLimits {
	r, b, hr, hb := l.Effective()
	return server.RateLimits{API: server.RateLimit{Rate: r, Burst: b}, Hot: server.RateLimit{Rate: hr, Burst: hb}}
}

// reloadOnHangup re-reads the TLS pair on every SIGHUP, so a renewed
// certificate is served without a restart; it returns the function that
// stops listening.
func reloadOnHangup(pair *tlscert.Pair, log *slog.Logger) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := pair.Reload(); err != nil {
					log.Error("reload TLS pair; still serving the previous one", "err", err)
					continue
				}
				log.Info("reloaded TLS pair", "serial", pair.Certificate().Leaf.SerialNumber.String())
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// lateNotifier forwards to n, set once before the controller starts.
type lateNotifier struct{ n rollout.Notifier }

func (l *lateNotifier) Notify(ctx context.Context, x rollout.Notice) error {
	if l.n == nil {
		return nil
	}
	return l.n.Notify(ctx, x)
}

// The stores tell the server which of their errors are a failing
// dependency (503) and when they cannot take writes (/readyz).
var (
	_ server.FailureClassifier = (*postgres.DB)(nil)
	_ server.FailureClassifier = (*sqlite.DB)(nil)
	_ server.ReadinessChecker  = (*sqlite.DB)(nil)
)
