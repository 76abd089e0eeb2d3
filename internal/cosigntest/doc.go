// Package cosigntest makes signatures in cosign's legacy format for tests of other
// packages: a `sha256-<hex>.sig` image with one simple-signing layer per signature.
package cosigntest
