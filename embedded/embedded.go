package embedded

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"

	// Storage and auth drivers register themselves on import.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Registry is a running in-process distribution registry.
type Registry struct {
	// URL is the registry's base URL: http://127.0.0.1:41234 when it listens (Start),
	// InProcessURL when it is reached only through Transport (Open).
	URL    string
	app    *handlers.App
	server *http.Server // nil when the registry does not listen
	done   chan error
}

// Config returns the distribution configuration the embedded registry uses: filesystem
// storage under dir, deletes enabled, no upload purging, quiet logs. Callers may add
// auth before passing it to Start.
func Config(dir string) (*configuration.Configuration, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	doc := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
  redirect:
    disable: true
http:
  addr: 127.0.0.1:0
  secret: %s
`, filepath.Join(dir, "registry"), hex.EncodeToString(secret))
	cfg, err := configuration.Parse(strings.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("embedded registry config: %w", err)
	}
	return cfg, nil
}

// Open builds a registry with cfg that listens nowhere: reach it at InProcessURL through
// Transport.
func Open(ctx context.Context, cfg *configuration.Configuration) (*Registry, error) {
	quietLogs()
	app, err := newApp(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Registry{URL: InProcessURL, app: app}, nil
}

// Start serves a registry with cfg on addr ("127.0.0.1:0" picks a free port). It is also
// reachable in process through Transport.
func Start(ctx context.Context, cfg *configuration.Configuration, addr string) (*Registry, error) {
	quietLogs()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded registry: %w", err)
	}
	app, err := newApp(ctx, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	r := &Registry{
		URL:  "http://" + ln.Addr().String(),
		app:  app,
		done: make(chan error, 1),
		server: &http.Server{
			Handler:           app,
			ReadHeaderTimeout: 30 * time.Second,
		},
	}
	go func() { r.done <- r.server.Serve(ln) }()
	return r, nil
}

// Handler returns the registry's HTTP handler (the /v2/ API).
func (r *Registry) Handler() http.Handler { return r.app }

// Transport returns a RoundTripper that serves requests for InProcessURL through the
// registry's handler in this process, without a socket, and sends requests for any other
// host to fallback (see NewTransport).
func (r *Registry) Transport(fallback http.RoundTripper) http.RoundTripper {
	return NewTransport(r.app, fallback)
}

// newApp turns distribution's panics on bad configuration into an error.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("embedded registry: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// Close stops the registry, waiting for in-flight requests on its socket up to the
// context's deadline (in-process requests are the caller's to drain first).
func (r *Registry) Close(ctx context.Context) error {
	var err error
	if r.server != nil {
		err = r.server.Shutdown(ctx)
		if serr := <-r.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	if aerr := r.app.Shutdown(); aerr != nil && err == nil {
		err = aerr
	}
	return err
}

// quietLogs sends distribution's logrus output nowhere but warnings and errors, as JSON
// on stderr, so it does not drown the gateway's own log.
func quietLogs() {
	logrus.SetLevel(logrus.WarnLevel)
	logrus.SetFormatter(clientErrorFilter{&logrus.JSONFormatter{}})
	logrus.SetOutput(stderr)
}

// clientErrorFilter drops distribution's "response completed with error" entries for
// 4xx answers (an unknown tag, a denied request): they are the client's business, logged by
// the gateway's access log, and would bury the registry's real errors.
type clientErrorFilter struct{ next logrus.Formatter }

func (f clientErrorFilter) Format(e *logrus.Entry) ([]byte, error) {
	if status, ok := e.Data["http.response.status"].(int); ok && status >= 400 && status < 500 {
		return nil, nil
	}
	return f.next.Format(e)
}

var stderr io.Writer = logWriter{}
