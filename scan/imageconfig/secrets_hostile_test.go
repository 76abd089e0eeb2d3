package imageconfig

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/secrets"
)

func ecKeyPEM(t testing.TB) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

func TestSecretsInConfigKeepsAKeyAfterAFlood(t *testing.T) {
	var b strings.Builder
	for range 3 * secrets.MaxFindings {
		b.WriteString("redis://app:" + randFrom(base62, 20) + "@localhost:6379 ")
	}
	b.WriteString(ecKeyPEM(t))
	cfg := &Config{}
	cfg.Config.Labels = map[string]string{"flood": b.String()}
	found := SecretsInConfig(cfg)
	keys := 0
	for _, s := range found {
		if s.Type == secrets.TypePrivateKey && s.Confidence == secrets.ConfidenceHigh {
			keys++
		}
	}
	if keys != 1 {
		t.Fatalf("%d private keys found after %d loopback URLs, want 1", keys, 3*secrets.MaxFindings)
	}
}

func TestSecretsInConfigStopsWhenItsContextEnds(t *testing.T) {
	cfg := &Config{}
	for i := range 100 {
		cfg.Config.Env = append(cfg.Config.Env, fmt.Sprintf("GH_TOKEN_%d=ghp_%s", i, randFrom(base62, 36)))
	}
	// 100 tokens whose excerpts ("ghp_…x7") often coincide: each counts.
	if found, err := SecretsInConfigContext(context.Background(), cfg); err != nil || len(found) != 100 {
		t.Fatalf("%d found, error %v; want 100", len(found), err)
	}
	stop := errors.New("config inspection budget spent")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(stop)
	found, err := SecretsInConfigContext(ctx, cfg)
	if !errors.Is(err, stop) || len(found) != 0 {
		t.Fatalf("%d found, error %v; want none and %v", len(found), err, stop)
	}
}

// BenchmarkSecretsInConfigHugeLabel searches a config whose one label is
// adversarial, at 2 MiB (the size that held a manifest PUT for 53 s) and
// ten times that, and reports ns/byte: the same figure at both sizes is
// linear scaling.
func BenchmarkSecretsInConfigHugeLabel(b *testing.B) {
	for _, in := range []struct{ name, unit string }{
		{"needles", "ecretECRET"},
		{"aws-ids", "AKIA" + randFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16) + " "},
		{"pem-begin-lines", "-----BEGIN PRIVATE KEY-----\n"},
		{"urls", "https://u:" + randFrom(base62, 20) + "@h.corp/ "},
	} {
		for _, scale := range []int{1, 10} {
			size := scale * 2 << 20
			cfg := &Config{}
			cfg.Config.Labels = map[string]string{"x": strings.Repeat(in.unit, size/len(in.unit))}
			b.Run(fmt.Sprintf("%s/%dx", in.name, scale), func(b *testing.B) {
				b.SetBytes(int64(size))
				for range b.N {
					SecretsInConfig(cfg)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(size), "ns/byte")
			})
		}
	}
}
