package verify

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"strings"
)

// digest is a parsed content digest: "sha256:<64 hex>" or "sha512:<128 hex>".
type digest struct {
	alg, hex string
}

// parseDigest parses an OCI digest of a registered algorithm, lowercase hex only.
func parseDigest(s string) (digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok {
		return digest{}, fmt.Errorf("digest %q has no algorithm", s)
	}
	var n int
	switch alg {
	case "sha256":
		n = 64
	case "sha512":
		n = 128
	default:
		return digest{}, fmt.Errorf("digest %q: unsupported algorithm", s)
	}
	if len(enc) != n || strings.Trim(enc, "0123456789abcdef") != "" {
		return digest{}, fmt.Errorf("digest %q: want %d lowercase hex digits", s, n)
	}
	return digest{alg: alg, hex: enc}, nil
}

// String returns the digest as "alg:hex".
func (d digest) String() string { return d.alg + ":" + d.hex }

// tag returns the tag cosign derives from the digest ("sha256-<hex>"), the referrers
// tag scheme's fallback tag; suffix ".sig" makes the legacy signature tag.
func (d digest) tag(suffix string) string { return d.alg + "-" + d.hex + suffix }

// matches reports whether data has this digest.
func (d digest) matches(data []byte) bool { return digestOf(d.alg, data) == d.String() }

// digestOf returns the digest of data under alg ("sha256" or "sha512").
func digestOf(alg string, data []byte) string {
	if alg == "sha512" {
		sum := sha512.Sum512(data)
		return "sha512:" + hex.EncodeToString(sum[:])
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
