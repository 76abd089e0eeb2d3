package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"testing"

	"github.com/portcullis-dev/portcullis/proxy"
)

// childGatewayEnv, when set in the environment of this test binary, makes it a gateway in
// front of the upstream URL it holds instead of running tests (see startChildGateway).
const childGatewayEnv = "PORTCULLIS_BENCH_CHILD_UPSTREAM"

// childSpliceEnv sets the child gateway's blob path: "copy" (the zero-copy path off),
// "splice" (on, the default) or "splice-rcvbuf4m" (on, asking for a 4 MiB receive buffer
// on upstream connections instead of leaving the kernel's autotuning).
const childSpliceEnv = "PORTCULLIS_BENCH_CHILD_SPLICE"

func TestMain(m *testing.M) {
	if upstream := os.Getenv(childGatewayEnv); upstream != "" {
		os.Exit(runChildGateway(upstream, os.Getenv(childSpliceEnv)))
	}
	os.Exit(m.Run())
}

// runChildGateway serves a gateway in front of upstream on a loopback port, as "portcullis
// serve --upstream" wires its proxy (network transport, no policy: blobs are not decided),
// with the blob path mode names (see childSpliceEnv), prints the port's address on stdout
// and serves until stdin closes.
func runChildGateway(upstream, mode string) int {
	transport, err := proxy.NewTransport(proxy.TransportOptions{Timeout: 30 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opts := []proxy.Option{proxy.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil)))}
	switch mode {
	case "copy":
		opts = append(opts, proxy.WithBlobSplice(false))
	case "splice-rcvbuf4m":
		opts = append(opts, proxy.WithSpliceReadBuffer(4<<20))
	}
	px, err := proxy.New(upstream, transport, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		os.Exit(0)
	}()
	_ = (&http.Server{Handler: px, ReadHeaderTimeout: 30 * time.Second}).Serve(ln)
	return 1
}
