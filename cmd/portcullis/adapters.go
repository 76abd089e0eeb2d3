package main

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/pullcred"
	"github.com/portcullis-dev/portcullis/scan/harbor"
	"github.com/portcullis-dev/portcullis/upstream"
)

// adapterFindingsTTL is how long an adapter's findings are kept per digest, scanner and
// database date.
const adapterFindingsTTL = 7 * 24 * time.Hour

// scanAdapters builds the clients of scan.adapters, keeping their findings in store, and
// the registry they pull from (scan.adapterRegistry).
func scanAdapters(c config.Scan, store harbor.Store) (map[string]gate.AdapterScanner, harbor.Registry, error) {
	if len(c.Adapters) == 0 {
		return nil, harbor.Registry{}, nil
	}
	var regAuth string
	if c.AdapterRegistry.EffectiveMode() == config.AdapterRegistryDirect {
		var err error
		if regAuth, err = basicAuthorization(c.AdapterRegistry.Credentials, "scan.adapterRegistry.credentials"); err != nil {
			return nil, harbor.Registry{}, err
		}
	}
	out := map[string]gate.AdapterScanner{}
	for i, a := range c.Adapters {
		auth, err := basicAuthorization(a.Credentials, fmt.Sprintf("scan.adapters[%d].credentials", i))
		if err != nil {
			return nil, harbor.Registry{}, err
		}
		opts := []harbor.ClientOption{harbor.WithStore(store, adapterFindingsTTL)}
		if auth != "" {
			opts = append(opts, harbor.WithAdapterAuthorization(auth))
		}
		if a.Timeout > 0 {
			opts = append(opts, harbor.WithBound(a.Timeout.Std()))
		}
		cl, err := harbor.NewClient(a.URL, opts...)
		if err != nil {
			return nil, harbor.Registry{}, fmt.Errorf("scan.adapters[%d].url: %w", i, err)
		}
		out[a.Name] = cl
	}
	return out, harbor.Registry{URL: c.AdapterRegistry.URL, Authorization: regAuth}, nil
}

// basicAuthorization is the Basic Authorization header of c, "" without a username.
func basicAuthorization(c config.Credentials, path string) (string, error) {
	if c.Username == "" {
		return "", nil
	}
	pw := c.Password
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("%s.passwordFile: %w", path, err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+pw)), nil
}

// adapterAPI is the built-in scanner served as a Harbor scanner adapter (scan.adapterAPI),
// nil when no registries are configured; close stops its scans.
func adapterAPI(cfg config.Config, log *slog.Logger) (h http.Handler, close func(), err error) {
	if len(cfg.Scan.AdapterAPI.Registries) == 0 {
		return nil, func() {}, nil
	}
	auth, err := adapterAPIAuth(cfg.Scan.AdapterAPI.Auth)
	if err != nil {
		return nil, nil, err
	}
	if auth == (harbor.ServerAuth{}) {
		log.Warn("the scanner adapter API (scan.adapterAPI) is served without authentication: anyone reaching the admin listener can make the gateway pull and analyse images from the allowed registries; set scan.adapterAPI.auth",
			slog.String("admin", cfg.Admin.Addr))
	}
	dbDir := cfg.Scan.DB
	if dbDir == "" {
		dbDir = filepath.Join(cfg.DataDir, "vulndb")
	}
	srv := harbor.NewServer(harbor.NewBuiltin(dbDir),
		harbor.WithScannerInfo(harbor.Scanner{Name: "portcullis", Vendor: "portcullis", Version: version}),
		harbor.WithAllowedRegistries(cfg.Scan.AdapterAPI.Registries...), harbor.WithAuth(auth))
	return srv, srv.Close, nil
}

// adapterAPIAuth reads the secrets of scan.adapterAPI.auth.
func adapterAPIAuth(a config.AdapterAPIAuth) (harbor.ServerAuth, error) {
	const path = "scan.adapterAPI.auth"
	var out harbor.ServerAuth
	var err error
	if out.BearerToken, err = secret(a.BearerTokenFile, a.BearerTokenEnv, path+".bearerTokenFile", path+".bearerTokenEnv"); err != nil {
		return out, err
	}
	if a.Username != "" {
		out.Username = a.Username
		if out.Password, err = secret(a.PasswordFile, a.PasswordEnv, path+".passwordFile", path+".passwordEnv"); err != nil {
			return out, err
		}
		if out.Password == "" {
			return out, fmt.Errorf("%s.passwordFile: the password is empty", path)
		}
	}
	if (a.BearerTokenFile != "" || a.BearerTokenEnv != "") && out.BearerToken == "" {
		return out, fmt.Errorf("%s.bearerTokenFile: the token is empty", path)
	}
	return out, nil
}

// secret reads a secret from file or from the environment variable env ("" when neither).
func secret(file, env, filePath, envPath string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", filePath, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s: environment variable %s is not set", envPath, env)
		}
		return v, nil
	}
	return "", nil
}

// unknownScanners lists the environments of p whose scanner choice the configured
// adapters cannot meet, each with why.
func unknownScanners(p *policy.Policy, c config.Scan) []string {
	names := map[string]bool{}
	for _, a := range c.Adapters {
		names[a.Name] = true
	}
	var out []string
	for _, e := range p.Environments() {
		switch {
		case e.Scanner == "" || e.Scanner == policy.ScannerBuiltin:
		case e.Scanner == policy.ScannerBoth:
			if len(c.Adapters) != 1 {
				out = append(out, fmt.Sprintf("environment %s: scanner both needs exactly one scan.adapters entry, there are %d", e.Name, len(c.Adapters)))
			}
		default:
			for _, n := range strings.Split(e.Scanner, ",") {
				if n != policy.ScannerBuiltin && !names[n] {
					out = append(out, fmt.Sprintf("environment %s: scanner %q is not in scan.adapters", e.Name, n))
				}
			}
		}
	}
	return out
}

// warnUnknownScanners logs each environment whose scanner cannot be met: its images get
// no vulnerability evidence, and its fail mode answers.
func warnUnknownScanners(p *policy.Policy, c config.Scan, log *slog.Logger) {
	for _, w := range unknownScanners(p, c) {
		log.Warn("scanner adapters: "+w+"; its vulnerability rules find no evidence and the fail mode answers", slog.String("config", "scan.adapters"))
	}
}

// scanPullOptions makes the proxy accept the adapters' per-scan pull credentials (gateway
// mode of scan.adapterRegistry), forwarding their pulls as the service account sa.
func scanPullOptions(cfg config.Config, upstreamURL string, rt http.RoundTripper, sa proxy.ServiceAccount, store cache.Store) ([]proxy.Option, error) {
	if len(cfg.Scan.Adapters) == 0 || cfg.Scan.AdapterRegistry.EffectiveMode() != config.AdapterRegistryGateway {
		return nil, nil
	}
	reader, err := upstream.New(upstreamURL, rt)
	if err != nil {
		return nil, err
	}
	return []proxy.Option{proxy.WithScanCredentials(pullcred.New(store), reader.WithServiceAccount(sa.Username, sa.Password).Transport())}, nil
}
