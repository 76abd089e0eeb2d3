package regtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/embedded"
	"github.com/portcullis-dev/portcullis/proxy"
)

// Registry starts an in-process distribution v3 registry with filesystem storage in a
// temporary directory and returns its base URL. It stops when the test ends. Options may
// change the distribution configuration (e.g. add auth) before it starts.
func Registry(tb testing.TB, opts ...func(*configuration.Configuration)) string {
	tb.Helper()
	return StartRegistry(tb, opts...).URL
}

// StartRegistry is Registry returning the registry itself: it listens on loopback at its
// URL and is also reachable without a socket through its Transport at
// embedded.InProcessURL, as "portcullis serve" reaches its embedded registry.
func StartRegistry(tb testing.TB, opts ...func(*configuration.Configuration)) *embedded.Registry {
	tb.Helper()
	cfg, err := embedded.Config(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	for _, o := range opts {
		o(cfg)
	}
	reg, err := embedded.Start(context.Background(), cfg, "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = reg.Close(ctx)
	})
	return reg
}

// Htpasswd returns an option that protects the registry with basic auth for one user.
func Htpasswd(tb testing.TB, user, password string) func(*configuration.Configuration) {
	tb.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "htpasswd")
	if err := os.WriteFile(path, fmt.Appendf(nil, "%s:%s\n", user, hash), 0o600); err != nil {
		tb.Fatal(err)
	}
	return func(c *configuration.Configuration) {
		c.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "portcullis-test", "path": path}}
	}
}

// Gateway serves a proxy in front of upstream over httptest and returns its URL.
func Gateway(tb testing.TB, upstream string, opts ...proxy.Option) *httptest.Server {
	tb.Helper()
	return GatewayVia(tb, upstream, nil, opts...)
}

// GatewayInProcess serves a proxy in front of reg reached in process, without a socket,
// as "portcullis serve" runs with its embedded registry: streaming requests go to the
// registry's handler directly (proxy.WithInProcessUpstream), the rest through its
// Transport.
func GatewayInProcess(tb testing.TB, reg *embedded.Registry, opts ...proxy.Option) *httptest.Server {
	tb.Helper()
	opts = append([]proxy.Option{proxy.WithInProcessUpstream(reg.Handler())}, opts...)
	return GatewayVia(tb, embedded.InProcessURL, func(network http.RoundTripper) http.RoundTripper {
		return reg.Transport(network)
	}, opts...)
}

// GatewayVia serves a proxy in front of upstream over httptest, reaching it through
// wrap(the gateway's network transport) when wrap is not nil.
func GatewayVia(tb testing.TB, upstream string, wrap func(http.RoundTripper) http.RoundTripper, opts ...proxy.Option) *httptest.Server {
	tb.Helper()
	network, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 10 * time.Second, MaxIdleConnsPerHost: 64})
	if err != nil {
		tb.Fatal(err)
	}
	var tr http.RoundTripper = network
	if wrap != nil {
		tr = wrap(network)
	}
	px, err := proxy.New(upstream, tr, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(px)
	tb.Cleanup(srv.Close)
	tb.Cleanup(network.CloseIdleConnections)
	return srv
}
