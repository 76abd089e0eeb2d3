package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// The chunk writer's bytes, read back chunk after chunk, are exactly what was written,
// whatever mix of tiny writes, empty ones and writes larger than its buffers arrives, and
// wherever the chunk boundaries fall (aligned for O_DIRECT or not); each chunk's recorded
// size and SHA-256 are its file's. Where the file system takes O_DIRECT, every chunk was
// written with it unless the writer was told to stay buffered.
func TestChunkWriterKeepsEveryByteInOrder(t *testing.T) {
	direct := directSupported(t)
	for _, size := range []int64{100<<10 + 1, 1 << 20, 3<<20 + 5} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			for _, mode := range []struct{ sync, buffered bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
				rng := rand.New(rand.NewPCG(uint64(size), 1))
				dir := t.TempDir()
				cw := &chunkWriter{dir: dir, size: size, sync: mode.sync, buffered: mode.buffered}
				var want bytes.Buffer
				for range 120 {
					var n int
					switch rng.IntN(4) {
					case 0:
						n = rng.IntN(16)
					case 1:
						n = rng.IntN(directAlign + 2)
					case 2:
						n = directAlign + rng.IntN(200<<10)
					default:
						n = rng.IntN(stageSize + 10)
					}
					p := make([]byte, n)
					for i := range p {
						p[i] = byte(rng.Uint32())
					}
					want.Write(p)
					if rng.IntN(2) == 0 {
						if _, err := cw.Write(p); err != nil {
							t.Fatal(err)
						}
						// The caller may reuse its buffer as soon as Write returns.
						clear(p)
						continue
					}
					cut := rng.IntN(n + 1)
					for _, part := range [][]byte{p[:cut], nil, p[cut:]} {
						if _, err := cw.Write(part); err != nil {
							t.Fatal(err)
						}
					}
					clear(p)
				}
				if err := cw.finish(); err != nil {
					t.Fatal(err)
				}
				if cw.offset() != int64(want.Len()) {
					t.Fatalf("offset %d after %d bytes", cw.offset(), want.Len())
				}
				if wantDirect := len(cw.chunks); mode.buffered || !direct {
					if cw.direct != 0 {
						t.Fatalf("%d chunks written with O_DIRECT, want none (%+v)", cw.direct, mode)
					}
				} else if cw.direct != wantDirect {
					t.Fatalf("%d of %d chunks written with O_DIRECT", cw.direct, wantDirect)
				}
				if len(cw.stage) != stageBuffers {
					t.Fatalf("%d buffers left after the last chunk, want %d", len(cw.stage), stageBuffers)
				}
				var got bytes.Buffer
				for i, c := range cw.chunks {
					data, err := os.ReadFile(filepath.Join(dir, c.Name))
					if err != nil {
						t.Fatal(err)
					}
					sum := sha256.Sum256(data)
					if c.Name != ChunkName(i) || int64(len(data)) != c.Size || hex.EncodeToString(sum[:]) != c.SHA256 {
						t.Fatalf("chunk %d: recorded %+v, file has %d bytes hashing to %x", i, c, len(data), sum)
					}
					if c.Size > size || (i < len(cw.chunks)-1 && c.Size != size) {
						t.Fatalf("chunk %d holds %d bytes, chunk size %d", i, c.Size, size)
					}
					got.Write(data)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Fatalf("the chunks hold %d bytes that differ from the %d written", got.Len(), want.Len())
				}
			}
		})
	}
}

// directSupported reports whether the test's temporary file system takes O_DIRECT.
func directSupported(t *testing.T) bool {
	f, err := os.Create(filepath.Join(t.TempDir(), "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ok := setDirect(f, true) == nil
	if !ok && runtime.GOOS == "linux" {
		t.Logf("%s does not take O_DIRECT: the chunk writer's buffered path only", os.TempDir())
	}
	return ok
}

// A source registry that serves other bytes than a blob's digest, or more or fewer bytes
// than its manifest says, fails the collect with an error naming the blob, and the
// fetcher stops with it.
func TestCollectRefusesABlobOtherThanItsDigest(t *testing.T) {
	reg := regtest.Registry(t)
	layer := bytes.Repeat([]byte("portcullis collect "), 200_000) // ~3.8 MiB: several fetch buffers
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), static.NewLayer(layer, types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	regtest.WriteImage(t, reg, "app/lie:1.0.0", img)
	m, _ := img.Manifest()
	blob := m.Layers[0].Digest.String()
	key := newSigningKey(t)
	for _, tc := range []struct {
		name string
		lie  func([]byte) []byte
		want string
	}{
		{"a flipped byte", func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 1; return b }, "fetching blob"},
		{"a byte more", func(b []byte) []byte { return append(bytes.Clone(b), 'x') }, "fetching blob"},
		{"a byte fewer", func(b []byte) []byte { return b[:len(b)-1] }, "fetching blob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse(reg)
			rp := httputil.NewSingleHostReverseProxy(u)
			rp.ModifyResponse = func(r *http.Response) error {
				if r.Request.Method != http.MethodGet || !strings.HasSuffix(r.Request.URL.Path, "/blobs/"+blob) {
					return nil
				}
				data, err := io.ReadAll(r.Body)
				r.Body.Close()
				if err != nil {
					return err
				}
				data = tc.lie(data)
				r.Body = io.NopCloser(bytes.NewReader(data))
				r.ContentLength = int64(len(data))
				r.Header.Set("Content-Length", strconv.Itoa(len(data)))
				return nil
			}
			liar := httptest.NewServer(rp)
			defer liar.Close()
			host := strings.TrimPrefix(liar.URL, "http://")
			f, err := ParseFile(strings.NewReader("version: 1\nsources:\n  - registry: " + host + "\n    repositories:\n      - {name: app/lie, tags: [\"1.0.0\"], referrers: false}\n"))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Resolve(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "bundle")
			// One collect writes into an empty directory that exists already: it stays,
			// emptied.
			existed := tc.name == "a byte more"
			if existed {
				if err := os.Mkdir(out, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			_, err = Write(context.Background(), plan, out, key.signer, WriteOptions{ChunkSize: 1 << 20, Remote: []remote.Option{remote.WithTransport(liar.Client().Transport)}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), blob) {
				t.Fatalf("collect from a lying source: %v, want an error naming blob %s", err, blob)
			}
			t.Log(err)
			// What the failed collect wrote (a few chunks already) is gone, with the
			// directory if it created it.
			entries, err := os.ReadDir(out)
			switch {
			case existed && (err != nil || len(entries) > 0):
				t.Fatalf("the failed collect left %v in %s (%v)", entries, out, err)
			case !existed && !os.IsNotExist(err):
				t.Fatalf("the failed collect left %s behind (%v)", out, err)
			}
			// Write waited for its fetcher to stop.
			buf := make([]byte, 1<<20)
			if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "mirror.startFetcher") {
				t.Fatalf("the fetcher outlived the failed collect:\n%s", stacks)
			}
		})
	}
}
