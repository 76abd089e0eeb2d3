package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/embedded"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/health"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/pullcred"
	"github.com/portcullis-dev/portcullis/records"
	"github.com/portcullis-dev/portcullis/telemetry"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

const serveHelp = `Usage: portcullis serve [flags]

Runs the gateway. With no upstream it starts an embedded CNCF distribution registry
storing under --data-dir, so "portcullis serve" alone is a working registry on :5000.
Precedence: defaults < --config file < PORTCULLIS_* environment < flags.

The registry API listens on --addr (and on the config file's listeners, each a door
with the host name the policy's environments match); /metrics and the detailed /readyz
are on --admin-addr only.

Example:
  portcullis serve --addr :5000 --admin-addr 127.0.0.1:9090 --upstream https://registry.internal --policy policy.yaml

Flags:
`

// loadConfig builds the configuration from defaults, file, environment and flags.
func loadConfig(args []string, stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveHelp); fs.PrintDefaults() }
	cfgPath := fs.String("config", os.Getenv("PORTCULLIS_CONFIG"), "YAML config file (env PORTCULLIS_CONFIG)")
	addr := fs.String("addr", "", "listen address HOST:PORT of the default door (default :5000; env PORTCULLIS_ADDR)")
	adminAddr := fs.String("admin-addr", "", "admin listen address HOST:PORT for /metrics and detailed /readyz (default "+config.DefaultAdminAddr+"; env PORTCULLIS_ADMIN_ADDR)")
	upstream := fs.String("upstream", "", "upstream registry URL; empty starts the embedded registry (env PORTCULLIS_UPSTREAM)")
	dataDir := fs.String("data-dir", "", "directory for the embedded registry and local state (default ./data; env PORTCULLIS_DATA_DIR)")
	policy := fs.String("policy", "", "policy file, or a built-in policy: starter, observe (env PORTCULLIS_POLICY)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (env PORTCULLIS_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return cfg, err
		}
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return cfg, err
	}
	for _, f := range []struct {
		v   string
		dst *string
	}{{*addr, &cfg.Addr}, {*adminAddr, &cfg.Admin.Addr}, {*upstream, &cfg.Upstream.URL}, {*dataDir, &cfg.DataDir}, {*policy, &cfg.Policy}, {*logLevel, &cfg.Log.Level}} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, cfg.CheckFiles()
}

func runServe(args []string, _, stderr io.Writer) int {
	cfg, err := loadConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis serve: invalid configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(stderr, cfg.Log.Level)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("gateway stopped", slog.String("error", err.Error()))
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// serve wires the gateway together and runs it until ctx ends, then drains in-flight
// requests for up to cfg.ShutdownTimeout.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	tel, err := telemetry.Setup(ctx, version, cfg.Telemetry.OTLPEndpoint)
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())

	sa, err := serviceAccount(cfg.Upstream.ServiceAccount)
	if err != nil {
		return err
	}
	network, err := proxy.NewTransport(proxy.TransportOptions{
		Timeout:             cfg.Upstream.Timeout.Std(),
		MaxIdleConnsPerHost: cfg.Upstream.MaxIdleConnsPerHost,
		CAFile:              cfg.Upstream.CAFile,
		InsecureSkipVerify:  cfg.Upstream.InsecureSkipVerify,
	})
	if err != nil {
		return err
	}
	upstreamURL := cfg.Upstream.URL
	var transport http.RoundTripper = network
	var inProcess []proxy.Option
	if upstreamURL == "" {
		// The embedded registry runs in this process: the proxy hands streaming requests
		// (blobs, uploads) to its handler with the client's response writer, and the rest
		// reach it through the transport; no socket in between either way.
		regCfg, err := embedded.Config(cfg.DataDir)
		if err != nil {
			return err
		}
		reg, err := embedded.Open(ctx, regCfg)
		if err != nil {
			return err
		}
		defer reg.Close(context.Background())
		upstreamURL = reg.URL
		transport = reg.Transport(network)
		inProcess = append(inProcess, proxy.WithInProcessUpstream(reg.Handler()))
		log.Info("embedded registry started", slog.String("url", reg.URL), slog.String("data_dir", cfg.DataDir))
	}
	store, rdb, cacheStatus, closeCache, err := newCache(cfg.Cache, tel, log)
	if err != nil {
		return err
	}
	defer closeCache()
	rs, err := openRecords(ctx, cfg)
	if err != nil {
		return err
	}
	defer rs.Close()
	log.Info("records", slog.String("backend", rs.Backend()))
	if rdb != nil && rs.Backend() == records.BackendSQLite {
		log.Warn("records are kept in this replica's own SQLite file while the cache is shared through Redis: replicas do not share first sightings, baselines or the tag ledger; set records.postgres.url for a fleet")
	}
	importFromRedisOnce(ctx, cfg, rdb, rs, log)
	hc := health.New(5 * time.Second)
	sinks, closeSinks, err := openAuditSinks(cfg, tel, log)
	if err != nil {
		return err
	}
	// Deferred after the listeners' drain: the sinks flush what the last requests recorded.
	defer closeSinks()
	if len(sinks) > 0 {
		hc.AddInfo("auditSinks", func() string { return auditSinksStatus(sinks) })
	}
	logSink, err := audit.OpenFile(auditLogPath(cfg))
	if err != nil {
		return err
	}
	// Closed after the listeners' drain, like the sinks: the last requests' events reach it.
	defer logSink.Close()
	recorders := audit.Fanout{logSink}
	for _, s := range sinks {
		recorders = append(recorders, s)
	}
	gt, watcher, tee, err := newGate(ctx, cfg, upstreamURL, transport, store, rs, tel, hc, recorders, log)
	if err != nil {
		return err
	}
	scanPulls, err := scanPullOptions(cfg, upstreamURL, transport, sa, store)
	if err != nil {
		return err
	}
	var px *proxy.Proxy
	pt, err := newPullThrough(cfg, upstreamURL, transport, sa, store, gt, func(ctx context.Context, repo, tag string) { px.TagMoved(ctx, repo, tag) }, log)
	if err != nil {
		return err
	}
	var ptOpt []proxy.Option
	if pt != nil {
		ptOpt = append(ptOpt, proxy.WithPullThrough(pt))
	}
	ptOpt = append(ptOpt, scanPulls...)
	px, err = proxy.New(upstreamURL, transport, append(append(inProcess, ptOpt...),
		proxy.WithGate(gt),
		proxy.WithCache(store),
		proxy.WithLogger(log),
		proxy.WithMaxManifestBytes(cfg.Limits.MaxManifestBytes),
		proxy.WithTracerProvider(tel.Tracer),
		proxy.WithMeterProvider(tel.Meter),
		proxy.WithServiceAccount(sa),
		proxy.WithUploadTee(tee),
	)...)
	if err != nil {
		return err
	}
	hc.Add("upstream", px.Ping)
	saCheck, err := serviceAccountCheck(ctx, upstreamURL, transport, sa, log)
	if err != nil {
		return err
	}
	hc.Add("serviceAccount", saCheck)
	hc.AddInfo("cache", cacheStatus)
	// Not a readiness check: pulls served from cache need no records, so a records store
	// that is down must not take replicas out of service.
	hc.AddInfo("records", func() string { return recordsStatus(rs) })
	if watcher != nil {
		hc.AddInfo("policy", watcher.Status)
	} else {
		hc.AddInfo("policy", func() string { return "built-in policy " + cfg.Policy + ", revision " + gt.Policy().Revision() })
	}

	warnUnreachableEnvironments(gt.Policy(), cfg.Doors(), log)
	warnUnknownScanners(gt.Policy(), cfg.Scan, log)
	adapterH, closeAdapter, err := adapterAPI(cfg, log)
	if err != nil {
		return err
	}
	defer closeAdapter()
	ls, err := openListeners(cfg, registryMux(px, hc), adminMux(hc, tel, adapterH), log)
	if err != nil {
		return err
	}
	log.Info("portcullis ready", slog.String("upstream", upstreamURL), slog.String("version", version), slog.Int("doors", len(cfg.Doors())))
	return serveListeners(ctx, ls, cfg.ShutdownTimeout.Std(), log)
}

// newCache builds the evidence cache: memory, or Redis with memory as its fallback. It
// returns the store, a status line for /readyz and a function that releases it.
func newCache(c config.Cache, tel *telemetry.Telemetry, log *slog.Logger) (cache.LockingStore, redis.UniversalClient, func() string, func(), error) {
	opts := []cache.Option{cache.WithMeterProvider(tel.Meter), cache.WithTimeout(c.Timeout.Std())}
	mem := cache.NewMemory(c.MemoryBytes, opts...)
	if len(c.Redis.Addrs) == 0 {
		return mem, nil, func() string {
			return "in-memory only (no cache.redis.addrs): verdicts are not shared between replicas"
		}, func() {}, nil
	}
	password := c.Redis.Password
	if c.Redis.PasswordFile != "" {
		b, err := os.ReadFile(c.Redis.PasswordFile)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("cache.redis.passwordFile: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	client, err := cache.NewRedisClient(cache.RedisOptions{
		Addrs: c.Redis.Addrs, MasterName: c.Redis.MasterName, Cluster: c.Redis.Cluster,
		SentinelPassword: c.Redis.SentinelPassword, Username: c.Redis.Username,
		Password: password, DB: c.Redis.DB, TLS: c.Redis.TLS,
		DialTimeout: c.Timeout.Std(), ReadTimeout: c.Timeout.Std(), WriteTimeout: c.Timeout.Std(),
	})
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("cache.redis: %w", err)
	}
	res := cache.NewResilient(cache.NewRedis(client, opts...), mem, opts...)
	where := "redis " + strings.Join(c.Redis.Addrs, ",")
	var store cache.LockingStore = res
	var near *cache.Near
	if c.Near.MaxBytes > 0 {
		near = cache.NewNear(res, client, cache.NearOptions{MaxBytes: c.Near.MaxBytes, MaxAge: c.Near.MaxAge.Std()})
		store = near
	}
	status := func() string {
		up, detail := res.Status()
		s := where + ": up"
		if !up {
			s = where + ": DOWN, serving from memory (" + detail + ")"
		}
		if near != nil {
			if live, why := near.Live(); live {
				s += "; near cache: on"
			} else {
				s += "; near cache: reading through (" + why + ")"
			}
		}
		return s
	}
	log.Info("cache", slog.String("redis", strings.Join(c.Redis.Addrs, ",")), slog.Bool("near", near != nil))
	return store, client, status, func() {
		if near != nil {
			near.Close()
		}
		res.Close()
		_ = client.Close()
	}, nil
}

// serviceAccountCheckEvery is how often readiness probes the upstream as the service
// account (each probe may fetch a token).
const serviceAccountCheckEvery = 30 * time.Second

// serviceAccountCheck probes the upstream as the gateway's own reads make them, once at
// start (logging what to do when it refuses them) and then as a readiness check: an
// upstream that requires authentication makes every decision that reads an image fail
// until upstream.serviceAccount is configured and accepted.
func serviceAccountCheck(ctx context.Context, upstreamURL string, rt http.RoundTripper, sa proxy.ServiceAccount, log *slog.Logger) (health.Check, error) {
	probe, err := upstream.New(upstreamURL, rt)
	if err != nil {
		return nil, err
	}
	if sa.Username != "" {
		probe = probe.WithServiceAccount(sa.Username, sa.Password)
	}
	check := health.Cached(serviceAccountCheckEvery, probe.CheckServiceAccount)
	startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var se *upstream.ServiceAccountError
	switch err := check(startCtx); {
	case errors.As(err, &se) && !se.Configured:
		log.Error("upstream requires authentication: configure upstream.serviceAccount", slog.String("error", err.Error()), slog.String("upstream", upstreamURL))
	case errors.As(err, &se):
		log.Error("upstream refused upstream.serviceAccount", slog.String("error", err.Error()), slog.String("upstream", upstreamURL))
	case err != nil:
		log.Warn("could not check the upstream service account", slog.String("error", err.Error()), slog.String("upstream", upstreamURL))
	}
	return check, nil
}

func serviceAccount(c config.Credentials) (proxy.ServiceAccount, error) {
	sa := proxy.ServiceAccount{Username: c.Username, Password: c.Password}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return sa, fmt.Errorf("upstream.serviceAccount.passwordFile: %w", err)
		}
		sa.Password = strings.TrimRight(string(b), "\r\n")
	}
	return sa, nil
}

// auditLogPath is where the JSON audit log is written: audit.path, or audit.log in the
// data directory.
func auditLogPath(cfg config.Config) string {
	if cfg.Audit.Path != "" {
		return cfg.Audit.Path
	}
	return filepath.Join(cfg.DataDir, "audit.log")
}

// newGate loads the policy and builds the gate recording to recorders; for a policy file
// it also starts the watcher that reloads it on change and on SIGHUP.
func newGate(ctx context.Context, cfg config.Config, upstreamURL string, rt http.RoundTripper, store cache.LockingStore, rs *records.Store, tel *telemetry.Telemetry, hc *health.Handler, recorders audit.Fanout, log *slog.Logger) (*gate.Gate, *gate.Watcher, *gate.UploadTee, error) {
	pol, err := gate.LoadPolicy(cfg.Policy)
	if err != nil {
		return nil, nil, nil, err
	}
	up, err := upstream.New(upstreamURL, rt)
	if err != nil {
		return nil, nil, nil, err
	}
	sa, err := serviceAccount(cfg.Upstream.ServiceAccount)
	if err != nil {
		return nil, nil, nil, err
	}
	reader, err := upstream.New(upstreamURL, rt)
	if err != nil {
		return nil, nil, nil, err
	}
	if sa.Username != "" {
		reader = reader.WithServiceAccount(sa.Username, sa.Password)
	}
	flight := cache.NewFlight(store, cache.WithMeterProvider(tel.Meter))
	sigs := gate.NewCachedVerifier(verify.New(reader), flight, gate.WithVerifierLogger(log))
	if err := sigs.Instrument(tel.Meter); err != nil {
		log.Error("signature verifier metrics unavailable", slog.String("error", err.Error()))
	}
	dbDir := cfg.Scan.DB
	if dbDir == "" {
		dbDir = filepath.Join(cfg.DataDir, "vulndb")
	}
	scanner := gate.NewScanner(reader, flight, dbDir)
	hc.AddInfo("vulndb", func() string { return scanner.Status(cfg.Scan.MaxDBAge.Std()) })
	if st := scanner.Status(cfg.Scan.MaxDBAge.Std()); strings.HasPrefix(st, "STALE") || strings.HasPrefix(st, "no vulnerability database") {
		log.Warn("vulnerability database", slog.String("status", st))
	}
	adapters, adapterReg, err := scanAdapters(cfg.Scan, store)
	if err != nil {
		return nil, nil, nil, err
	}
	now, reminderEvery := gatewayClock(log)
	g := gate.New(pol, up, recorders, gate.WithLogger(log), gate.WithClock(now), gate.WithSignatures(sigs), gate.WithImages(reader), gate.WithScanner(scanner),
		gate.WithPullScanWait(cfg.Scan.PullWait.Std()), gate.WithAdapters(adapters, adapterReg),
		gate.WithCache(store), gate.WithRecords(rs), gate.WithMeterProvider(tel.Meter))
	if len(adapters) > 0 && cfg.Scan.AdapterRegistry.EffectiveMode() == config.AdapterRegistryGateway {
		gate.WithScanCredentials(pullcred.New(store), cfg.Scan.AdapterRegistry.Scheme == "bearer")(g)
	}
	tee := gate.NewUploadTee(scanner, g.ScansPush, log)
	if err := tee.Instrument(tel.Meter); err != nil {
		log.Error("upload tee metrics unavailable", slog.String("error", err.Error()))
	}
	reloadDBOnHUP(ctx, scanner, log)
	go g.RunReminders(ctx, reminderEvery)
	go pruneRecords(ctx, rs, cfg.Records.Retention.Std(), now, log)
	log.Info("policy loaded", slog.String("policy", cfg.Policy), slog.String("revision", pol.Revision()), slog.String("audit", auditLogPath(cfg)))
	if slices.Contains(policy.BuiltinNames(), cfg.Policy) {
		return g, nil, tee, nil
	}
	w := gate.NewWatcher(g, cfg.Policy, log)
	if f, ok := store.(interface{ Flush(context.Context) error }); ok {
		// Nothing the near cache keeps depends on the policy today; dropping it on a reload
		// keeps that true whatever is kept later.
		w.OnReload(func() {
			fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := f.Flush(fctx); err != nil {
				log.Warn("near cache: other replicas not told of the policy reload; their copies expire within cache.near.maxAge", slog.String("error", err.Error()))
			}
		})
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	context.AfterFunc(ctx, func() { signal.Stop(hup) })
	go w.Run(ctx, 2*time.Second, hup)
	return g, w, tee, nil
}

// reloadDBOnHUP makes SIGHUP look for a newly imported vulnerability database at once
// (scans notice one by themselves within 30 seconds).
func reloadDBOnHUP(ctx context.Context, scanner *gate.Scanner, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	context.AfterFunc(ctx, func() { signal.Stop(hup) })
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				scanner.Reload()
				log.Info("SIGHUP: looking for a newly imported vulnerability database")
			}
		}
	}()
}
