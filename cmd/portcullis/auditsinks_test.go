package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/config"
)

func TestAuditSinkSecrets(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readSecret(config.Secret{File: file}, func(string) string { return "" })
	if err != nil || string(got) != "tok-1" {
		t.Fatalf("secret from file = %q, %v; want the trailing newline trimmed", got, err)
	}
	env := map[string]string{"HEC": "tok-2"}
	if got, err := readSecret(config.Secret{Env: "HEC"}, func(k string) string { return env[k] }); err != nil || string(got) != "tok-2" {
		t.Fatalf("secret from env = %q, %v", got, err)
	}
	sc := config.AuditSink{Name: "s", Type: "splunk", URL: "https://splunk.example:8088", Secret: config.Secret{Env: "MISSING"}}.WithDefaults()
	_, _, err = newSender(sc, "audit.sinks[2]", func(string) string { return "" })
	if err == nil || !strings.HasPrefix(err.Error(), "audit.sinks[2].secret: ") || !strings.Contains(err.Error(), "MISSING") {
		t.Fatalf("err = %v, want the field path and the variable's name", err)
	}
	sc = config.AuditSink{Name: "s", Type: "syslog", Address: "127.0.0.1:6514", TLS: config.SinkTLS{Enabled: true, CAFile: "/nonexistent.pem"}}.WithDefaults()
	if _, _, err := newSender(sc, "audit.sinks[0]", os.Getenv); err == nil || !strings.HasPrefix(err.Error(), "audit.sinks[0].tls.caFile: ") {
		t.Fatalf("err = %v, want the tls field path", err)
	}
}
