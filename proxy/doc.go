// Package proxy is the gateway's OCI /v2/ HTTP surface: routing, streaming pass-through to
// the upstream registry, manifest integrity checks and OCI error JSON.
package proxy
