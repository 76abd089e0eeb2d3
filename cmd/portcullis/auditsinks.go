package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/portcullis-dev/portcullis/audit/export"
	"github.com/portcullis-dev/portcullis/audit/spool"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/telemetry"
)

// openAuditSinks starts the SIEM sinks of cfg.Audit.Sinks, each over its spool (delivering
// what an earlier run left there first). The returned close flushes them within
// cfg.Audit.FlushTimeout.
func openAuditSinks(cfg config.Config, tel *telemetry.Telemetry, log *slog.Logger) ([]*export.Sink, func(), error) {
	var sinks []*export.Sink
	var closers []func() error
	closeAll := func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.AuditFlushTimeout())
		defer cancel()
		for _, s := range sinks {
			if err := s.Close(ctx); err != nil {
				log.Error("closing audit sink", slog.String("sink", s.Name()), slog.String("error", err.Error()))
			}
		}
		for _, c := range closers {
			_ = c()
		}
	}
	for i, sc := range cfg.Audit.Sinks {
		sc = sc.WithDefaults()
		path := fmt.Sprintf("audit.sinks[%d]", i)
		sender, closer, err := newSender(sc, path, os.Getenv)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if closer != nil {
			closers = append(closers, closer)
		}
		sp, err := spool.Open(cfg.SinkSpoolDir(sc.Name), sc.SpoolBytes)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		opts := []export.Option{
			export.WithLogger(log), export.WithMeterProvider(tel.Meter),
			export.WithBatch(sc.BatchSize, 0), export.WithRetry(sc.RetryMin.Std(), sc.RetryMax.Std()),
		}
		if len(sc.Types) > 0 {
			opts = append(opts, export.WithTypes(sc.Types...))
		}
		s, err := export.New(sc.Name, sc.Type, sp, sender, opts...)
		if err != nil {
			sp.Close()
			closeAll()
			return nil, nil, err
		}
		sinks = append(sinks, s)
		log.Info("audit sink started", slog.String("sink", sc.Name), slog.String("type", sc.Type), slog.String("encoding", sc.Encoding),
			slog.Int("spooled", s.Stats().Pending), slog.String("spool", cfg.SinkSpoolDir(sc.Name)))
	}
	return sinks, closeAll, nil
}

// newSender builds the sender of one sink (sc with its defaults); path prefixes errors.
func newSender(sc config.AuditSink, path string, getenv func(string) string) (export.Sender, func() error, error) {
	var tc *tls.Config
	if sc.TLS != (config.SinkTLS{}) || strings.HasPrefix(sc.URL, "https:") {
		var err error
		tc, err = export.TLSFiles{CAFile: sc.TLS.CAFile, CertFile: sc.TLS.CertFile, KeyFile: sc.TLS.KeyFile,
			ServerName: sc.TLS.ServerName, InsecureSkipVerify: sc.TLS.InsecureSkipVerify}.Config()
		if err != nil {
			return nil, nil, fmt.Errorf("%s.%w", path, err)
		}
	}
	enc := export.Encoding(sc.Encoding)
	switch sc.Type {
	case config.SinkCloudEvents:
		key, err := readSecret(sc.Secret, getenv)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.secret: %w", path, err)
		}
		s, err := export.NewCloudEvents(export.CloudEventsConfig{URL: sc.URL, Source: sc.Source, Secret: key, Encoding: enc,
			ProductVersion: version, TLS: tc, Timeout: sc.Timeout.Std()})
		return s, nil, err
	case config.SinkSplunk:
		token, err := readSecret(sc.Secret, getenv)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.secret: %w", path, err)
		}
		s, err := export.NewHEC(export.HECConfig{URL: sc.URL, Token: string(token), Index: sc.Index, Source: sc.Source,
			SourceType: sc.SourceType, Encoding: enc, ProductVersion: version, TLS: tc, Timeout: sc.Timeout.Std()})
		return s, nil, err
	case config.SinkSyslog:
		fac, ok := export.Facilities[sc.Facility]
		if !ok {
			return nil, nil, fmt.Errorf("%s.facility: unknown %q", path, sc.Facility)
		}
		if !sc.TLS.Enabled {
			tc = nil
		}
		s, err := export.NewSyslog(export.SyslogConfig{Address: sc.Address, TLS: tc, Facility: &fac, Encoding: enc,
			ProductVersion: version, Timeout: sc.Timeout.Std()})
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	return nil, nil, fmt.Errorf("%s.type: unknown %q", path, sc.Type)
}

// readSecret reads a secret from its file (trailing newline trimmed) or variable.
func readSecret(s config.Secret, getenv func(string) string) ([]byte, error) {
	var v string
	switch {
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return nil, err
		}
		v = strings.TrimRight(string(b), "\r\n")
	case s.Env != "":
		v = getenv(s.Env)
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is empty or not set", s.Env)
		}
	}
	if v == "" {
		return nil, errors.New("empty secret")
	}
	return []byte(v), nil
}

// auditSinksStatus summarises the sinks for the detailed /readyz.
func auditSinksStatus(sinks []*export.Sink) string {
	parts := make([]string, 0, len(sinks))
	for _, s := range sinks {
		st := s.Stats()
		var dropped int64
		for _, n := range st.Dropped {
			dropped += n
		}
		parts = append(parts, fmt.Sprintf("%s: %d pending, %d sent, %d dropped, %d retries", s.Name(), st.Pending, st.Sent, dropped, st.Retries))
	}
	return strings.Join(parts, "; ")
}
