package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/health"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/telemetry"
)

// listener is one bound socket and the server answering on it.
type listener struct {
	name string
	ln   net.Listener
	srv  *http.Server
	// tls serves HTTPS with srv.TLSConfig (HTTP/2 offered as with ServeTLS).
	tls bool
}

// registryMux is what every door serves: the registry API, the decisions API and the
// bare probes, nothing an anonymous client should not see (no metrics, no readiness
// details). The decisions API answers only clients the upstream lets pull the image.
func registryMux(px *proxy.Proxy, hc *health.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/v2/", px)
	mux.Handle("/v2", px)
	mux.Handle(proxy.DecisionsPath, px.Decisions())
	mux.Handle("/healthz", hc.Bare())
	mux.Handle("/readyz", hc.Bare())
	return mux
}

// adminMux is the operational surface: metrics and readiness with its details.
func adminMux(hc *health.Handler, tel *telemetry.Telemetry, adapterAPI http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/healthz", hc)
	mux.Handle("/readyz", hc)
	mux.Handle("/metrics", tel.Metrics)
	if adapterAPI != nil {
		mux.Handle("/api/v1/", adapterAPI)
	}
	return mux
}

// openListeners binds every door of cfg (each serving mux as that door) and the admin
// listener (serving admin) when configured. On error nothing stays bound.
func openListeners(cfg config.Config, mux, admin http.Handler, log *slog.Logger) ([]listener, error) {
	var out []listener
	fail := func(err error) ([]listener, error) {
		for _, l := range out {
			_ = l.ln.Close()
		}
		return nil, err
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	open := func(name, addr string, t config.TLS, h http.Handler) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", name, err)
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          errLog,
		}
		if t.Enabled() {
			cert, err := t.Certificate()
			if err != nil {
				_ = ln.Close()
				return nil, fmt.Errorf("listener %s: %w", name, err)
			}
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		out = append(out, listener{name: name, ln: ln, srv: srv, tls: t.Enabled()})
		return ln, nil
	}
	for _, d := range cfg.Doors() {
		door := proxy.Door{Name: d.Name, Host: d.Host, TrustForwardedHost: d.TrustForwardedHost}
		ln, err := open(d.Name, d.Addr, d.TLS, door.Handler(mux))
		if err != nil {
			return fail(err)
		}
		attrs := []any{slog.String("listener", d.Name), slog.String("addr", ln.Addr().String()), slog.Bool("tls", d.TLS.Enabled())}
		switch {
		case d.TrustForwardedHost:
			attrs = append(attrs, slog.String("host", "X-Forwarded-Host (trusted front proxy)"))
		case d.Host != "":
			attrs = append(attrs, slog.String("host", d.Host))
		}
		log.Info("portcullis listening", attrs...)
	}
	if cfg.Admin.Addr != "" {
		ln, err := open("admin", cfg.Admin.Addr, cfg.Admin.TLS, admin)
		if err != nil {
			return fail(err)
		}
		log.Info("admin listening", slog.String("addr", ln.Addr().String()), slog.Bool("tls", cfg.Admin.TLS.Enabled()),
			slog.String("serves", "/metrics /readyz /healthz"))
	} else {
		log.Warn("admin listener off (admin.addr is empty): no /metrics and no readiness details")
	}
	return out, nil
}

// serveListeners serves every listener until ctx ends or one fails, then shuts them all down,
// draining in-flight requests for up to drain.
func serveListeners(ctx context.Context, ls []listener, drain time.Duration, log *slog.Logger) error {
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			if l.tls {
				errc <- l.srv.ServeTLS(l.ln, "", "")
			} else {
				errc <- l.srv.Serve(l.ln)
			}
		}()
	}
	var failed error
	select {
	case failed = <-errc:
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests", slog.Duration("timeout", drain))
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	errs := []error{failed}
	for _, l := range ls {
		if err := l.srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("graceful shutdown of listener %s: %w", l.name, err))
		}
	}
	return errors.Join(errs...)
}

// warnUnreachableEnvironments logs each environment of p that selects by hosts: when no
// door applies a matching host (and none trusts a front proxy): since environments are
// bound to doors, such an environment is never chosen.
func warnUnreachableEnvironments(p *policy.Policy, doors []config.Listener, log *slog.Logger) {
	for _, d := range doors {
		if d.TrustForwardedHost {
			return
		}
	}
	for _, e := range p.Environments() {
		if len(e.Hosts) == 0 || anyDoorHost(e.Hosts, doors) {
			continue
		}
		log.Warn("policy environment selects by hosts, but no listener applies such a host: it is never chosen"+
			" (give a listener `host:`, see docs/CONFIGURATION.md#migration-for-hosts-users)",
			slog.String("environment", e.Name), slog.String("hosts", strings.Join(e.Hosts, ",")))
	}
}

// anyDoorHost reports whether a door's host matches one of the host patterns.
func anyDoorHost(patterns []string, doors []config.Listener) bool {
	for _, d := range doors {
		h := strings.ToLower(strings.TrimSuffix(d.Host, "."))
		if h == "" {
			continue
		}
		for _, p := range patterns {
			if ok, _ := path.Match(strings.ToLower(strings.TrimSuffix(p, ".")), h); ok {
				return true
			}
		}
	}
	return false
}
