package gate_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/upstream"
)

// TestMissingDatabaseErrorShowsNoPath: the scan error that reaches clients says what to do
// without naming the server's directory; the operator's status (/readyz) names it.
func TestMissingDatabaseErrorShowsNoPath(t *testing.T) {
	reg := regtest.Registry(t)
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	dbDir := t.TempDir()
	scanner := gate.NewScanner(up, cache.NewFlight(cache.NewMemory(16<<20)), dbDir)
	digest, manifest := pushByDigest(t, reg, "prod/app")
	_, err = scanner.Scan(context.Background(), "prod/app", digest, manifest)
	if err == nil || strings.Contains(err.Error(), dbDir) || !strings.Contains(err.Error(), "no vulnerability database is imported; import one with portcullis db import") {
		t.Fatalf("Scan without a database: %v; want what to do, without %s", err, dbDir)
	}
	if st := scanner.Status(0); !strings.HasPrefix(st, "no vulnerability database in "+dbDir) {
		t.Fatalf("Status: %q, want the directory named for the operator", st)
	}
}
