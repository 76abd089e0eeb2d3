package proxy_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
	"github.com/portcullis-dev/portcullis/upstream"
)

// scanGateway serves a gateway whose policy has (scan) or lacks a vulnerability rule.
func scanGateway(b *testing.B, scan bool) string {
	b.Helper()
	reg := regtest.Registry(b)
	doc := "version: 1\nrules:\n  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}\n"
	if scan {
		doc += "  - {id: vulns, type: vulnerability, mode: block, severity: critical}\n"
	}
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		b.Fatal(err)
	}
	dbDir := filepath.Join(b.TempDir(), "vulndb")
	if _, err := vulndb.Import(dbDir, filepath.Join("..", "scan", "vulndb", "testdata", "debian")); err != nil {
		b.Fatal(err)
	}
	scanner := gate.NewScanner(up, cache.NewFlight(cache.NewMemory(256<<20)), dbDir)
	g := gate.New(p, up, discardSink{}, gate.WithImages(up), gate.WithScanner(scanner), gate.WithLogger(quietLogger))
	return regtest.Gateway(b, reg, proxy.WithGate(g), proxy.WithLogger(quietLogger),
		proxy.WithUploadTee(gate.NewUploadTee(scanner, g.ScansPush, quietLogger))).URL
}

// BenchmarkPushWithScan pushes fresh images (3 random layers of 8 MiB, so no layer is
// ever cached) through a gateway that scans them on push and through one that does not,
// alternating, and reports the ratio of push times (target <= 1.15).
func BenchmarkPushWithScan(b *testing.B) {
	plain, scanning := scanGateway(b, false), scanGateway(b, true)
	push := func(base string, i int) time.Duration {
		img, err := random.Image(8<<20, 3)
		if err != nil {
			b.Fatal(err)
		}
		ref, err := name.ParseReference(strings.TrimPrefix(base, "http://")+"/bench/scan:"+time.Now().Format("150405.000000")+"-"+string(rune('a'+i%26)), name.Insecure)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := remote.Write(ref, img); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var tPlain, tScan time.Duration
	var ratios []float64
	for i := 0; b.Loop(); i++ {
		var p, s time.Duration
		if i%2 == 0 {
			p, s = push(plain, i), push(scanning, i)
		} else {
			s, p = push(scanning, i), push(plain, i)
		}
		tPlain += p
		tScan += s
		ratios = append(ratios, s.Seconds()/p.Seconds())
	}
	n := float64(len(ratios))
	b.ReportMetric(tPlain.Seconds()/n*1000, "plain-ms/push")
	b.ReportMetric(tScan.Seconds()/n*1000, "scan-ms/push")
	b.ReportMetric(perfMedian(ratios), "scan/plain")
}
