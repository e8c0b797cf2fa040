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
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/config"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/store/postgres"
	"github.com/imagegate/imagegate/internal/store/sqlite"
)

type serveOptions struct {
	config   string
	listen   string
	db       string
	dataDir  string
	addrFile string
	external string
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
controller, externalURL, alerts, reports; see examples/imagegate.yaml), then
IMAGEGATE_LISTEN, IMAGEGATE_DB, IMAGEGATE_DATA_DIR, IMAGEGATE_EXTERNAL_URL, then flags.
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
	st, where, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()

	var health rollout.Health
	if p := cfg.Policies; p.MaxFailureRate > 0 {
		minJobs := p.HealthMinJobs
		if minJobs == 0 {
			minJobs = 20
		}
		health = rollout.FailureRateHealth{Jobs: st, MaxFailureRate: p.MaxFailureRate, MinJobs: minJobs}
	}
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{
		Health: health, Logger: log,
		ExpeditedBakeFactor: cfg.Policies.ExpeditedBakeFactor, PinExpiryWarning: cfg.Policies.PinExpiryWarning,
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
	ctl := rollout.NewController(svc, st, rollout.ControllerOptions{
		Holder: holder, Interval: cfg.Controller.Interval, LeaseTTL: cfg.Controller.LeaseTTL, Logger: log,
	})
	_, reports, err := serveAlerts(svc, st, cfg)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{
		Service: svc, Store: st, Controller: ctl, Registry: server.NewRegistry(), Logger: log,
		TokenCacheTTL: cfg.Policies.TokenCacheTTL, Reports: reports,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (change --listen)", cfg.Listen, err)
	}
	url := "http://" + ln.Addr().String()
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

	ctlCtx, stopCtl := context.WithCancel(ctx)
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		ctl.Run(ctlCtx)
	}()
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
	}
	// Stop taking requests, let running ones (event batches) finish, then
	// release the controller lease so another replica takes over at once.
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if serr := hs.Shutdown(shCtx); serr != nil {
		log.Warn("shutdown", "err", serr)
	}
	stopCtl()
	<-ctlDone
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
