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
	// URL is the registry's base URL, e.g. http://127.0.0.1:41234.
	URL    string
	app    *handlers.App
	server *http.Server
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

// Start serves a registry with cfg on addr ("127.0.0.1:0" picks a free port).
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

// newApp turns distribution's panics on bad configuration into an error.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("embedded registry: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// Close stops the registry, waiting for in-flight requests up to the context's deadline.
func (r *Registry) Close(ctx context.Context) error {
	err := r.server.Shutdown(ctx)
	if serr := <-r.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
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
