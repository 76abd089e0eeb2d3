// Package regtest starts real registries and gateways for tests: an in-process
// distribution v3 registry (optionally behind htpasswd auth) and the proxy in front of it.
package regtest
