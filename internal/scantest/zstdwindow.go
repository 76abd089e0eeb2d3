package scantest

import (
	"archive/tar"
	"bytes"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// HugeWindowZstdLayer is a zstd layer blob (media type OCI zstd) holding a tar of files
// (path to content, mode 0600) in one frame whose header declares a 2 TiB window: no
// decoder with a sane memory bound reads it, so its analysis cannot finish. Its DiffID,
// as go-containerregistry's static layer reports it, is its blob digest.
func HugeWindowZstdLayer(tb testing.TB, files map[string]string) v1.Layer {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range sortedKeys(files) {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o600, Size: int64(len(files[p])), Typeflag: tar.TypeReg}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[p])); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	tarball := buf.Bytes()
	// Frame header: magic, descriptor 0 (no content size, not single-segment), window
	// descriptor exponent 31 (2^41 bytes); then raw blocks of at most 128 KiB.
	blob := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 31 << 3}
	for len(tarball) > 0 {
		n := min(len(tarball), 128<<10)
		h := uint32(n) << 3 // a raw block
		if n == len(tarball) {
			h |= 1 // the last
		}
		blob = append(blob, byte(h), byte(h>>8), byte(h>>16))
		blob = append(blob, tarball[:n]...)
		tarball = tarball[n:]
	}
	return static.NewLayer(blob, types.OCILayerZStd)
}
