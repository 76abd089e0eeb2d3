package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
)

func TestValidateListeners(t *testing.T) {
	t.Parallel()
	ci := config.Listener{Name: "ci", Addr: ":5001", Host: "ci.registry.example"}
	tests := []struct {
		name   string
		change func(*config.Config)
		want   []string // "path: message", in order; none for a valid config
	}{
		{"a CI door beside the default", func(c *config.Config) { c.Listeners = []config.Listener{ci} }, nil},
		{"listeners only", func(c *config.Config) {
			c.Addr = ""
			c.Listeners = []config.Listener{{Name: "cluster", Addr: ":5000"}, ci}
		}, nil},
		{"a door named default when addr is the default door", func(c *config.Config) {
			c.Listeners = []config.Listener{{Name: "default", Addr: ":5001"}}
		}, []string{`listeners[0].name: "default" is already the name of addr`}},
		{"a door named default without addr", func(c *config.Config) {
			c.Addr = ""
			c.Listeners = []config.Listener{{Name: "default", Addr: ":5001"}}
		}, nil},
		{"trusted front proxy door", func(c *config.Config) {
			c.Listeners = []config.Listener{{Name: "front", Addr: "127.0.0.1:5002", TrustForwardedHost: true}}
		}, nil},
		{"IPv6 host", func(c *config.Config) {
			c.Listeners = []config.Listener{{Name: "v6", Addr: ":5001", Host: "[fd00::1]"}}
		}, nil},
		{"missing name and addr", func(c *config.Config) { c.Listeners = []config.Listener{{Host: "ci.example"}} },
			[]string{"listeners[0].name: required", "listeners[0].addr: required"}},
		{"bad name", func(c *config.Config) { c.Listeners = []config.Listener{{Name: "CI door", Addr: ":5001"}} },
			[]string{`listeners[0].name: want lower-case letters, digits and '-' (at most 63), got "CI door"`}},
		{"duplicate name", func(c *config.Config) {
			c.Listeners = []config.Listener{ci, {Name: "ci", Addr: ":5002"}}
		}, []string{`listeners[1].name: "ci" is already the name of listeners[0]`}},
		{"same address as addr", func(c *config.Config) { c.Listeners = []config.Listener{{Name: "ci", Addr: ":5000"}} },
			[]string{"listeners[0].addr: :5000 is already used by addr"}},
		{"same port under a wildcard", func(c *config.Config) {
			c.Listeners = []config.Listener{{Name: "ci", Addr: "127.0.0.1:5000"}}
		}, []string{"listeners[0].addr: 127.0.0.1:5000 is already used by addr"}},
		{"same port on two addresses", func(c *config.Config) {
			c.Addr = "10.0.0.1:5000"
			c.Listeners = []config.Listener{{Name: "ci", Addr: "10.0.0.2:5000"}}
		}, nil},
		{"ephemeral ports never collide", func(c *config.Config) {
			c.Addr = "127.0.0.1:0"
			c.Admin.Addr = "127.0.0.1:0"
			c.Listeners = []config.Listener{{Name: "ci", Addr: "127.0.0.1:0"}}
		}, nil},
		{"admin on the registry port", func(c *config.Config) { c.Admin.Addr = "0.0.0.0:5000" },
			[]string{"admin.addr: 0.0.0.0:5000 is already used by addr"}},
		{"admin on a door's port", func(c *config.Config) {
			c.Listeners = []config.Listener{ci}
			c.Admin.Addr = "127.0.0.1:5001"
		}, []string{"admin.addr: 127.0.0.1:5001 is already used by listeners[0].addr"}},
		{"admin off", func(c *config.Config) { c.Admin.Addr = "" }, nil},
		{"admin without port", func(c *config.Config) { c.Admin.Addr = "localhost" },
			[]string{"admin.addr: want HOST:PORT (e.g. :5000): address localhost: missing port in address"}},
		{"bad door address", func(c *config.Config) { c.Listeners = []config.Listener{{Name: "ci", Addr: "5001"}} },
			[]string{"listeners[0].addr: want HOST:PORT (e.g. :5000): address 5001: missing port in address"}},
		{"door cert without key", func(c *config.Config) {
			l := ci
			l.TLS.CertFile = "ci.crt"
			c.Listeners = []config.Listener{l}
		}, []string{"listeners[0].tls: certFile and keyFile go together"}},
		{"admin key without cert", func(c *config.Config) { c.Admin.TLS.KeyFile = "admin.key" },
			[]string{"admin.tls: certFile and keyFile go together"}},
		{"host with a port", func(c *config.Config) {
			c.Listeners = []config.Listener{{Name: "ci", Addr: ":5001", Host: "ci.example:5001"}}
		}, []string{"listeners[0].host: hosts are matched without a port; remove the port"}},
		{"host pattern", func(c *config.Config) {
			c.Listeners = []config.Listener{{Name: "ci", Addr: ":5001", Host: "*.example"}}
		}, []string{`listeners[0].host: "*.example" is not a host name (one name such as ci.registry.example, no pattern)`}},
		{"host and trusted proxy", func(c *config.Config) {
			c.Listeners = []config.Listener{{Name: "ci", Addr: ":5001", Host: "ci.example", TrustForwardedHost: true}}
		}, []string{"listeners[0]: set host or trustForwardedHost, not both: a door either names its host or trusts its front proxy to"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *config.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() =\n%s\nwant\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDoors(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.TLS = config.TLS{CertFile: "c.pem", KeyFile: "k.pem"}
	ci := config.Listener{Name: "ci", Addr: ":5001", Host: "ci.example"}
	c.Listeners = []config.Listener{ci}
	want := []config.Listener{{Name: config.DefaultListener, Addr: ":5000", TLS: c.TLS}, ci}
	if got := c.Doors(); !reflect.DeepEqual(got, want) {
		t.Errorf("Doors() = %+v, want %+v", got, want)
	}
	c.Addr = ""
	if got := c.Doors(); !reflect.DeepEqual(got, []config.Listener{ci}) {
		t.Errorf("Doors() without addr = %+v, want only the listeners", got)
	}
}

func TestLoadListenersYAML(t *testing.T) {
	t.Parallel()
	c := config.Default()
	err := c.Overlay([]byte(`addr: ""
listeners:
  - {name: cluster, addr: ":5000"}
  - {name: ci, addr: ":5001", host: ci.registry.example}
admin: {addr: ":9090"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "" || len(c.Doors()) != 2 || c.Doors()[1].Host != "ci.registry.example" || c.Admin.Addr != ":9090" {
		t.Errorf("overlay = %+v", c)
	}
	// A misspelt field in a listener is an error, like anywhere else.
	c = config.Default()
	if err := c.Overlay([]byte("listeners:\n  - {name: ci, addr: \":5001\", hosts: [ci.example]}\n")); err == nil || !strings.Contains(err.Error(), "hosts") {
		t.Errorf("unknown listener field: %v, want an error naming it", err)
	}
}

func TestCheckFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.TLS = config.TLS{CertFile: cert, KeyFile: key}
	c.Listeners = []config.Listener{
		{Name: "ci", Addr: ":5001", TLS: config.TLS{CertFile: cert, KeyFile: key}},
		{Name: "bad", Addr: ":5002", TLS: config.TLS{CertFile: garbage, KeyFile: key}},
		{Name: "missing", Addr: ":5003", TLS: config.TLS{CertFile: filepath.Join(dir, "none.pem"), KeyFile: key}},
	}
	c.Admin.TLS = config.TLS{CertFile: cert, KeyFile: cert} // a certificate is not a key
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	err := c.CheckFiles()
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("CheckFiles() = %v, want a *ValidationError", err)
	}
	var paths []string
	for _, p := range ve.Problems {
		paths = append(paths, p.Path)
	}
	if want := []string{"listeners[1].tls", "listeners[2].tls", "admin.tls"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("CheckFiles() problems at %v, want %v:\n%v", paths, want, err)
	}
	c.Listeners = c.Listeners[:1]
	c.Admin.TLS = config.TLS{}
	if err := c.CheckFiles(); err != nil {
		t.Errorf("CheckFiles() with good files = %v", err)
	}
}

// writeCert writes a self-signed certificate and its key as PEM files in dir.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portcullis test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestDeployExampleValidates keeps deploy/examples/portcullis.yaml a working configuration.
func TestDeployExampleValidates(t *testing.T) {
	t.Parallel()
	c, err := config.Load(filepath.Join("..", "deploy", "examples", "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example configuration does not validate:\n%v", err)
	}
	if len(c.Doors()) != 2 || c.Doors()[1].Host == "" || c.Admin.Addr != config.DefaultAdminAddr {
		t.Errorf("the example shows no CI door or no admin listener: %+v", c)
	}
}
