package regtest

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WriteImage pushes img as repoTag ("team/app:1.0.0") to the registry at registryURL (a
// base URL such as Registry returns, plain HTTP) and returns the manifest's digest and
// bytes, failing the test on any error.
func WriteImage(tb testing.TB, registryURL, repoTag string, img v1.Image) (digest string, manifest []byte) {
	tb.Helper()
	ref, err := name.ParseReference(strings.TrimPrefix(registryURL, "http://")+"/"+repoTag, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		tb.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	manifest, err = img.RawManifest()
	if err != nil {
		tb.Fatal(err)
	}
	return d.String(), manifest
}
