//go:build !unix

package proxy_test

import (
	"net"
	"testing"
)

// closedPort returns the address of a TCP port that nothing listens on: one a listener
// just released.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
