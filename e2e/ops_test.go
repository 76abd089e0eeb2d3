package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths and a
// pool trusting the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "portcullis e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, []byte("tls:\n  certFile: "+certFile+"\n  keyFile: "+keyFile+"\n"))
	gw := launchGateway(t, "--config", cfg)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var resp *http.Response
	if !poll(startTimeout, func() bool {
		r, err := client.Get("https://" + gw.addr + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		resp = r
		return r.StatusCode == http.StatusOK
	}) {
		t.Fatalf("no ready answer over TLS: %v", resp)
	}
	base, err := client.Get("https://" + gw.addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	base.Body.Close()
	if base.StatusCode != http.StatusOK || base.TLS == nil {
		t.Fatalf("GET /v2/ over TLS: %s (tls %v)", base.Status, base.TLS != nil)
	}
	// Plain HTTP to a TLS listener gets no registry answer.
	if plain, err := http.Get("http://" + gw.addr + "/v2/"); err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Fatal("the TLS listener answered plain HTTP with 200")
		}
	}
}

// slowBody yields its data in pieces, the rest only after release is closed.
type slowBody struct {
	first, rest []byte
	release     chan struct{}
	sentFirst   chan struct{}
	stage       int
}

func (b *slowBody) Read(p []byte) (int, error) {
	switch b.stage {
	case 0:
		b.stage = 1
		n := copy(p, b.first)
		b.first = b.first[n:]
		if len(b.first) > 0 {
			b.stage = 0
			return n, nil
		}
		close(b.sentFirst)
		return n, nil
	case 1:
		<-b.release
		b.stage = 2
		fallthrough
	case 2:
		if len(b.rest) == 0 {
			return 0, io.EOF
		}
		n := copy(p, b.rest)
		b.rest = b.rest[n:]
		return n, nil
	}
	return 0, io.EOF
}

func TestSIGTERMLetsInFlightUploadFinish(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	gw := startGateway(t, "--data-dir", data)
	blob := bytes.Repeat([]byte("portcullis graceful shutdown "), 1<<16) // ~1.8 MiB
	digest := sha256Digest(blob)

	start, err := http.Post(gw.url("/v2/e2e/shutdown/blobs/uploads/"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	start.Body.Close()
	loc := start.Header.Get("Location")
	if start.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("upload start: %s", start.Status)
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	sendDuringDrain(t, gw, http.MethodPut, loc+sep+"digest="+digest, "application/octet-stream", blob)
	// The blob was stored: a new gateway on the same data directory serves it.
	again := startGateway(t, "--data-dir", data)
	head, err := http.Head(again.url("/v2/e2e/shutdown/blobs/" + digest))
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusOK {
		t.Fatalf("blob uploaded during shutdown: HEAD %s, want 200", head.Status)
	}
}

// TestSIGTERMKeepsInFlightDecisionInAuditLog pushes a manifest whose body is half sent when
// the gateway is told to stop: the push is decided after the drain began, and its audit
// event must still reach the audit log (which is closed only after the drain).
func TestSIGTERMKeepsInFlightDecisionInAuditLog(t *testing.T) {
	dir := t.TempDir()
	gw := startGateway(t, "--data-dir", filepath.Join(dir, "data"))
	auditPath := filepath.Join(dir, "data", "audit.log")
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(gw.url("/e2e/drain:1.0.0"), "http://"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	manifest, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	sendDuringDrain(t, gw, http.MethodPut, "/v2/e2e/drain/manifests/1.0.1", string(mt), manifest)
	for _, e := range readAudit(t, auditPath) {
		if e.Action == "push" && e.Repository == "e2e/drain" && e.Reference == "1.0.1" {
			return
		}
	}
	t.Fatalf("the push decided during the drain is missing from the audit log:\n%s", readFile(t, auditPath))
}

// sendDuringDrain sends body to path in two halves with SIGTERM to gw in between (once
// the gateway says it is draining), and requires a 201 and the gateway's exit after it.
func sendDuringDrain(t *testing.T, gw *gateway, method, path, contentType string, data []byte) {
	t.Helper()
	body := &slowBody{first: data[:len(data)/2], rest: data[len(data)/2:], release: make(chan struct{}), sentFirst: make(chan struct{})}
	req, _ := http.NewRequest(method, gw.url(path), body)
	req.ContentLength = int64(len(data))
	req.Header.Set("Content-Type", contentType)
	// "Expect: 100-continue" holds the body back until the gateway's handler reads it, so
	// sentFirst below means the gateway has accepted the connection and is serving the
	// request. Without it, a SIGTERM could close the listener before the gateway accepted
	// the connection, and the request would never have been in flight.
	req.Header.Set("Expect", "100-continue")
	done := make(chan *http.Response, 1)
	errc := make(chan error, 1)
	// A connection of its own: reusing an idle keep-alive connection would let shutdown
	// close it as idle if the gateway had not yet read the request's first bytes.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: time.Minute}}
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			errc <- err
			return
		}
		done <- resp
	}()
	<-body.sentFirst
	// Half the body is in flight: ask the gateway to stop, then send the rest.
	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !poll(10*time.Second, func() bool { return gw.log.contains("draining in-flight requests") }) {
		t.Fatalf("the gateway did not start draining:\n%s", gw.log.tail(20))
	}
	close(body.release)
	select {
	case err := <-errc:
		t.Fatalf("the in-flight %s %s failed during shutdown: %v", method, path, err)
	case resp := <-done:
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("in-flight %s %s finished with %s, want 201", method, path, resp.Status)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the in-flight %s %s did not finish", method, path)
	}
	select {
	case <-gw.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway did not exit after draining")
	}
}
