package config_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
)

func TestLoadAuditSinks(t *testing.T) {
	t.Parallel()
	got, err := config.Load(filepath.Join("testdata", "audit-good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("audit-good.yaml does not validate:\n%v", err)
	}
	want := []config.AuditSink{
		{Name: "soc-webhook", Type: "cloudevents", URL: "https://events.soc.example/portcullis", Source: "//portcullis/prod-eu",
			Secret: config.Secret{File: "/run/secrets/cloudevents-hmac"}, TLS: config.SinkTLS{CAFile: "/etc/portcullis/soc-ca.pem"}},
		{Name: "splunk", Type: "splunk", URL: "https://splunk.example:8088", Encoding: "ocsf", Index: "security",
			Secret: config.Secret{Env: "SPLUNK_HEC_TOKEN"}, Types: []string{"decision", "exception.expiring"},
			SpoolBytes: 256 << 20, BatchSize: 500, RetryMin: config.Duration(2 * time.Second), RetryMax: config.Duration(10 * time.Minute)},
		{Name: "rsyslog", Type: "syslog", Address: "syslog.example:6514", Facility: "local4",
			TLS: config.SinkTLS{Enabled: true, CAFile: "/etc/portcullis/syslog-ca.pem", CertFile: "/etc/portcullis/syslog-client.crt", KeyFile: "/etc/portcullis/syslog-client.key"}},
	}
	if !reflect.DeepEqual(got.Audit.Sinks, want) {
		t.Errorf("sinks =\n%+v\nwant\n%+v", got.Audit.Sinks, want)
	}
	if got.AuditFlushTimeout() != 20*time.Second {
		t.Errorf("flush timeout %s", got.AuditFlushTimeout())
	}
	if d := got.SinkSpoolDir("splunk"); d != filepath.Join("/var/lib/portcullis", "audit-spool", "splunk") {
		t.Errorf("spool dir %s", d)
	}
	def := got.Audit.Sinks[2].WithDefaults()
	if def.SpoolBytes != 64<<20 || def.BatchSize != 100 || def.Timeout.Std() != 10*time.Second || def.RetryMin.Std() != time.Second ||
		def.RetryMax.Std() != 5*time.Minute || def.Encoding != "native" || def.Facility != "local4" {
		t.Errorf("defaults %+v", def)
	}
	if config.Default().AuditFlushTimeout() != 10*time.Second {
		t.Error("default flush timeout")
	}
}

func TestValidateAuditSinksReportsEveryFieldPath(t *testing.T) {
	t.Parallel()
	ve := validateGolden(t, "audit-bad.yaml", "audit-bad.golden")
	for _, p := range ve.Problems {
		if !strings.HasPrefix(p.Path, "audit.") {
			t.Errorf("problem outside audit: %+v", p)
		}
	}
}
