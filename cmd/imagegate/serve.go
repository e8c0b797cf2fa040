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
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
controller), then IMAGEGATE_LISTEN, IMAGEGATE_DB, IMAGEGATE_DATA_DIR, then flags.
The database defaults to SQLite at DATA_DIR/imagegate.db; give --db postgres://...
for several replicas. At first start the admin token is IMAGEGATE_ADMIN_TOKEN, or one
is generated and printed once to stderr.
Stops gracefully on SIGTERM or interrupt.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.config == "" {
				opts.config = opts.getenv("IMAGEGATE_CONFIG")
			}
			return runServe(cmd.Context(), g, opts, cmd.Flags().Changed, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.config, "config", "", "YAML config file (also IMAGEGATE_CONFIG)")
	f.StringVar(&opts.listen, "listen", ":8080", "address to listen on (host:port; port 0 picks a free one)")
	f.StringVar(&opts.db, "db", "", "SQLite file path or postgres:// URL (default DATA_DIR/imagegate.db)")
	f.StringVar(&opts.dataDir, "data-dir", "imagegate-data", "directory of the default SQLite database")
	f.StringVar(&opts.addrFile, "addr-file", "", "write the server's URL to this file once it listens (for scripts using port 0)")
	return cmd
}

// serveConfig merges the config file, the environment and the flags that
// were given, in that order of precedence (last wins).
func serveConfig(opts *serveOptions, changed func(string) bool) (server.Config, error) {
	var cfg server.Config
	if opts.config != "" {
		b, err := os.ReadFile(opts.config)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if cfg, err = server.ParseConfig(b); err != nil {
			return cfg, fmt.Errorf("%s: %w", opts.config, err)
		}
	}
	cfg.ApplyEnv(opts.getenv)
	for _, o := range []struct {
		flag string
		val  string
		dst  *string
	}{{"listen", opts.listen, &cfg.Listen}, {"db", opts.db, &cfg.DB}, {"data-dir", opts.dataDir, &cfg.DataDir}} {
		if changed(o.flag) || *o.dst == "" {
			*o.dst = o.val
		}
	}
	return cfg, nil
}

func openStore(ctx context.Context, cfg server.Config) (rollout.Store, string, error) {
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
	if err := applyRings(ctx, svc, st, cfg); err != nil {
		return err
	}
	if err := server.BootstrapAdmin(ctx, st, opts.getenv("IMAGEGATE_ADMIN_TOKEN"), stderr, time.Now()); err != nil {
		return err
	}

	host, _ := os.Hostname()
	ctl := rollout.NewController(svc, st, rollout.ControllerOptions{
		Holder: fmt.Sprintf("%s/%d", host, os.Getpid()), Interval: cfg.Controller.Interval, LeaseTTL: cfg.Controller.LeaseTTL, Logger: log,
	})
	srv, err := server.New(server.Options{
		Service: svc, Store: st, Controller: ctl, Registry: server.NewRegistry(), Logger: log,
		TokenCacheTTL: cfg.Policies.TokenCacheTTL,
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

// applyRings stores the config's ring plans when they differ from the
// stored ones, so restarting with the same file changes nothing (and
// writes no audit entry).
func applyRings(ctx context.Context, svc *rollout.Service, st rollout.Store, cfg server.Config) error {
	type plan struct {
		label string
		rings []rollout.Ring
	}
	var plans []plan
	if len(cfg.Rings) > 0 {
		plans = append(plans, plan{"", server.RingPlan(cfg.Rings)})
	}
	for label, img := range cfg.Images {
		plans = append(plans, plan{label, server.RingPlan(img.Rings)})
	}
	for _, p := range plans {
		cur, err := st.GetRings(ctx, p.label)
		if err != nil && !errors.Is(err, rollout.ErrNotFound) {
			return fmt.Errorf("read ring plan: %w", err)
		}
		if err == nil && reflect.DeepEqual(normRings(cur), normRings(p.rings)) {
			continue
		}
		if err := svc.SetRings(ctx, "config", p.label, p.rings); err != nil {
			return fmt.Errorf("apply ring plan %q from the config: %w", p.label, err)
		}
	}
	return nil
}

func normRings(rs []rollout.Ring) []rollout.Ring {
	out := make([]rollout.Ring, len(rs))
	for i, r := range rs {
		if len(r.Orgs) == 0 {
			r.Orgs = nil
		}
		out[i] = r
	}
	return out
}
