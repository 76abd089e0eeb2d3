package e2e

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"

	"github.com/portcullis-dev/portcullis/embedded"
)

// TestUpstreamKilledMidTransfer kills the upstream registry while a 64 MiB blob streams
// through the gateway: the client must see the transfer fail (not a silently short blob),
// the gateway must stay alive and say the upstream is unavailable, and serve again as soon
// as an upstream is back.
func TestUpstreamKilledMidTransfer(t *testing.T) {
	const size = 64 << 20
	storage := t.TempDir()
	up := startUpstream(t, storage, "127.0.0.1:0")
	gw := startGateway(t, "--upstream", "http://"+up.addr)
	// The timeout only guards against a hang.
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)

	var seed [32]byte
	_, _ = crand.Read(seed[:])
	h := sha256.New()
	_, _ = io.Copy(h, blobContent(seed, size))
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	pushBlob(t, client, gw, "e2e/big", digest, blobContent(seed, size), size)
	blobURL := gw.url("/v2/e2e/big/blobs/" + digest)

	// Start the download, and kill the upstream once the client holds 8 MiB.
	resp := get(t, client, blobURL)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
		t.Fatalf("GET %s: %s with Content-Length %d, want 200 with %d", blobURL, resp.Status, resp.ContentLength, size)
	}
	got := sha256.New()
	head, err := io.CopyN(got, resp.Body, 8<<20)
	if err != nil {
		t.Fatalf("reading the first 8 MiB: %v", err)
	}
	up.kill()
	rest, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("the client read %d of %d bytes and no error although the upstream died mid-transfer", head+rest, size)
	}
	if head+rest >= size {
		t.Fatalf("the client read all %d bytes before the failure: the upstream was not killed mid-transfer", head+rest)
	}
	t.Logf("client got %d of %d bytes, then: %v", head+rest, size, err)

	// The gateway is alive and tells clients the upstream is unavailable.
	if st := httpStatus(gw.url("/healthz")); st != http.StatusOK {
		t.Errorf("/healthz answered %d with the upstream down, want 200", st)
	}
	expectUnavailable(t, client, gw.url("/v2/"))
	expectUnavailable(t, client, blobURL)
	if st := httpStatus(gw.url("/readyz")); st != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d with the upstream down, want 503", st)
	}

	// A new upstream on the same address and storage: the gateway serves again, in full.
	startUpstream(t, storage, up.addr)
	if !poll(30*time.Second, func() bool { return httpStatus(gw.url("/v2/")) == http.StatusOK }) {
		t.Fatal("the gateway did not serve /v2/ again after the upstream came back")
	}
	resp = get(t, client, blobURL)
	got.Reset()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || n != size {
		t.Fatalf("GET %s after the restart: %s, %d bytes, err %v; want 200 and %d bytes", blobURL, resp.Status, n, err, size)
	}
	if d := "sha256:" + hex.EncodeToString(got.Sum(nil)); d != digest {
		t.Fatalf("blob served after the restart has digest %s, want %s", d, digest)
	}
	gw.waitReady(t)
}

// blobContent is size pseudo-random bytes determined by seed, so a large blob can be
// produced twice (to hash it, then to upload it) without holding it in memory.
func blobContent(seed [32]byte, size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seed), size)
}

// pushBlob uploads a blob through the gateway in one POST and one streaming PUT.
func pushBlob(t *testing.T, client *http.Client, gw *gateway, repo, digest string, body io.Reader, size int64) {
	t.Helper()
	resp, err := client.Post(gw.url("/v2/"+repo+"/blobs/uploads/"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("starting an upload: %s, Location %q", resp.Status, loc)
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	if strings.HasPrefix(loc, "/") {
		loc = gw.url(loc)
	}
	req, err := http.NewRequest(http.MethodPut, loc+sep+"digest="+digest, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("uploading %d bytes: %v", size, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("uploading %d bytes: %s %s", size, resp.Status, msg)
	}
}

func get(t *testing.T, client *http.Client, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

// expectUnavailable checks that url answers 503 with an OCI error of code UNAVAILABLE.
func expectUnavailable(t *testing.T, client *http.Client, url string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s with the upstream down: %v (the gateway must answer)", url, err)
	}
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	decErr := json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusServiceUnavailable || decErr != nil || len(body.Errors) == 0 || body.Errors[0].Code != "UNAVAILABLE" {
		t.Errorf("GET %s with the upstream down: %s %+v (decode: %v), want 503 with OCI error UNAVAILABLE", url, resp.Status, body, decErr)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s with the upstream down: Content-Type %q, want application/json", url, ct)
	}
}

// upstream is an in-process distribution v3 registry that a test can kill abruptly (every
// connection cut at once, as when its process dies) and start again on the same address
// and storage.
type upstream struct {
	addr string
	srv  *http.Server
	app  *handlers.App
	done chan struct{}
	once sync.Once
}

// startUpstream serves a registry storing under dir on addr ("127.0.0.1:0" for a free port).
func startUpstream(t *testing.T, dir, addr string) *upstream {
	t.Helper()
	logrus.SetLevel(logrus.WarnLevel)
	cfg, err := embedded.Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("upstream listening on %s: %v", addr, err)
	}
	u := &upstream{
		addr: ln.Addr().String(),
		app:  handlers.NewApp(context.Background(), cfg),
		done: make(chan struct{}),
	}
	u.srv = &http.Server{Handler: u.app, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		_ = u.srv.Serve(ln)
		close(u.done)
	}()
	t.Cleanup(u.kill)
	return u
}

// kill closes the listener and every connection without waiting for requests in flight.
func (u *upstream) kill() {
	u.once.Do(func() {
		_ = u.srv.Close()
		<-u.done
		_ = u.app.Shutdown()
	})
}
