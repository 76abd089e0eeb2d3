package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/upstream"
)

const reasonPolicy = `version: 1
environments:
  - {name: prod, repositories: ["**"], failMode: closed}
rules:
  - {id: no-latest, type: tag, mode: block, forbidden: [latest]}
  - {id: base-image, type: config, mode: block, check: base-image, baseImages: ["docker.io/library/alpine"]}
`

// hostileBase is a base image label a pusher chose: line breaks that would start a header
// and a body of their own, control bytes, non-ASCII and far more text than a status line
// should carry.
var hostileBase = "evil\r\nX-Injected: yes\r\n\r\n<html>\x00\x7f\xff\u00e9/" + strings.Repeat("A", 500)

// reasonGateway is a gated proxy handler whose upstream holds team/app:1.0.0, an image
// whose base image label is hostileBase.
func reasonGateway(t *testing.T) http.Handler {
	t.Helper()
	reg := regtest.Registry(t)
	p, err := policy.Parse([]byte(reasonPolicy))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.New(reg, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Labels = map[string]string{"org.opencontainers.image.base.name": hostileBase}
	if img, err = mutate.Config(img, cfg); err != nil {
		t.Fatal(err)
	}
	regtest.WriteImage(t, reg, "team/app:1.0.0", img)
	tr, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.New(reg, tr, proxy.WithGate(gate.New(p, up, discardSink{}, gate.WithImages(up))), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return px
}

// rawExchange sends one HTTP/1.1 request on its own connection and returns every byte the
// server sent until it closed the connection.
func rawExchange(t *testing.T, addr, method, target string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = io.WriteString(c, method+" "+target+" HTTP/1.1\r\nHost: "+addr+"\r\nX-Request-Id: rid-"+strings.ToLower(method)+
		"\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(c) // the refusal closes the connection: no wait on a timer
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestRefusalReasonPhrase: a refusal on HTTP/1.1 carries a short, clean form of its message
// in the status line and the decision id in a header, with the OCI error body as before
// (none for a HEAD); text the pusher controls cannot add a header or a body; HTTP/2 keeps
// the standard reason phrase and the same body and header.
func TestRefusalReasonPhrase(t *testing.T) {
	srv := httptest.NewServer(reasonGateway(t))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	get := rawExchange(t, addr, http.MethodGet, "/v2/team/app/manifests/1.0.0")
	head := rawExchange(t, addr, http.MethodHead, "/v2/team/app/manifests/1.0.0")
	for _, raw := range [][]byte{get, head} {
		line, rest, _ := bytes.Cut(raw, []byte("\r\n"))
		const want = "HTTP/1.1 403 denied by policy: [base-image] base image evil X-Injected: yes <html> /AAA"
		if !bytes.HasPrefix(line, []byte(want)) || !bytes.HasSuffix(line, []byte("...; see portcullis check")) ||
			len(line)-len("HTTP/1.1 403 ") > 200 {
			t.Errorf("status line %q (%d bytes): want %q... capped at 200 bytes with the pointer to portcullis check", line, len(line), want)
		}
		for _, c := range line {
			if c < 0x20 || c > 0x7e {
				t.Errorf("status line has byte %#x: %q", c, line)
			}
		}
		if bytes.Contains(rest, []byte("\nX-Injected")) || bytes.Contains(rest, []byte("\n<html>")) {
			t.Errorf("client text escaped the status line:\n%s", raw)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(get)), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	var doc struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Errors) != 1 || doc.Errors[0].Code != "DENIED" ||
		!strings.Contains(doc.Errors[0].Message, "[base-image] base image evil\r\nX-Injected") {
		t.Errorf("GET body %q: want the OCI DENIED error with the whole message", body)
	}
	if id := resp.Header.Get(proxy.DecisionIDHeader); !strings.HasPrefix(id, "rid-get-") || len(id) != len("rid-get-")+16 || resp.Header.Get("X-Request-Id") != id || !resp.Close ||
		resp.Header.Get("X-Injected") != "" {
		t.Errorf("GET headers %v: want %s = X-Request-Id = rid-get-<16 hex> and Connection: close", resp.Header, proxy.DecisionIDHeader)
	}
	hresp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), &http.Request{Method: http.MethodHead})
	if err != nil {
		t.Fatal(err)
	}
	if _, after, _ := bytes.Cut(head, []byte("\r\n\r\n")); len(after) != 0 || hresp.ContentLength != int64(len(body)) ||
		!strings.HasPrefix(hresp.Header.Get(proxy.DecisionIDHeader), "rid-head-") {
		t.Errorf("HEAD: %d bytes after the header, Content-Length %d (GET body %d), decision id %q; want no body, the GET's length, rid-head-<16 hex>",
			len(after), hresp.ContentLength, len(body), hresp.Header.Get(proxy.DecisionIDHeader))
	}

	// A denied push: the tag rule's finding in the status line, through an ordinary client.
	presp := putManifest(t, srv.URL, "team/app", "latest")
	presp.Body.Close()
	if !strings.HasPrefix(presp.Status, "403 denied by policy: [no-latest] ") || presp.Header.Get(proxy.DecisionIDHeader) == "" {
		t.Errorf("push of latest: %q, decision id %q", presp.Status, presp.Header.Get(proxy.DecisionIDHeader))
	}

	// HTTP/2: no reason phrase exists; the answer is the ordinary one.
	h2 := httptest.NewUnstartedServer(reasonGateway(t))
	h2.EnableHTTP2 = true
	h2.StartTLS()
	defer h2.Close()
	req, _ := http.NewRequest(http.MethodGet, h2.URL+"/v2/team/app/manifests/1.0.0", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	r2, err := h2.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.ProtoMajor != 2 || r2.Status != "403 Forbidden" || !bytes.Contains(b2, []byte(`"DENIED"`)) || r2.Header.Get(proxy.DecisionIDHeader) == "" {
		t.Errorf("over HTTP/2: %s %q %s, decision id %q", r2.Proto, r2.Status, b2, r2.Header.Get(proxy.DecisionIDHeader))
	}
}
