// Package regtest starts real registries and gateways for tests: an in-process
// distribution v3 registry (optionally behind htpasswd basic auth or token auth with a
// test token server) and the proxy in front of it.
package regtest
