package mirror

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseFile(f *testing.F) {
	f.Add("version: 1\nsources:\n  - registry: docker.io\n    platforms: [linux/amd64]\n    repositories:\n      - {name: nginx, tags: [\"1.27\"], semver: \"~1.27\", tagRegex: [\"^1\"], referrers: false}\n")
	f.Add("version: 1\ntarget: {prefix: \"-\"}\nsources: [{registry: \"a:5000\", repositories: [{name: x, digests: [\"sha256:" + strings.Repeat("a", 64) + "\"], as: y}]}]\n")
	f.Add("&a [*a, *a]")
	key := "-----BEGIN PUBLIC KEY-----\n          MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEE0Vi6sSlGZmFlIVsW8Cr4UJBnAOT\n          J/EksNvxOfTtbQyBwGjRgjDQhnco4yFU+FfVHgdEuJ04ngYTVYr3SkUEIg==\n          -----END PUBLIC KEY-----\n"
	f.Add("version: 1\nsources:\n  - registry: ghcr.io\n    authorities:\n      - name: r\n        key: |\n          " + key +
		"        signCommand: cosign sign\n    repositories:\n      - {name: a/b, tags: [v1]}\n")
	f.Add("version: 1\nsources:\n  - registry: ghcr.io\n    repositories:\n      - {name: a/b, tags: [v1], authorities: [{name: x, keyFile: k.pub}]}\n")
	f.Add("version: 1\nsources: [{registry: a.io, authorities: [], repositories: [{name: x, tags: [v1], authorities: {name: y}}]}]\n")
	f.Fuzz(func(t *testing.T, s string) {
		file, err := ParseFile(strings.NewReader(s))
		if err != nil {
			return
		}
		// What parses is valid, and every mapped name is a repository name.
		if err := file.Validate(); err != nil {
			t.Fatalf("parsed but invalid: %v", err)
		}
		for _, src := range file.Sources {
			for _, r := range src.Repositories {
				if m := file.MappedName(src, r); !pathPattern.MatchString(m) {
					t.Fatalf("mapped name %q", m)
				}
				// Publisher authorities that parse each have a name and a usable key.
				for _, a := range PublisherAuthorities(src, r) {
					if a.Name == "" || a.PublicKey == nil {
						t.Fatalf("authority %+v parsed without a name or key", a)
					}
				}
			}
		}
	})
}

func FuzzParseBundleManifest(f *testing.F) {
	d := "sha256:" + strings.Repeat("a", 64)
	f.Add([]byte(`{"formatVersion":1,"created":"2026-12-07T00:00:00Z","compression":"zstd","layoutSize":10,"objects":1,"images":[{"source":"a/b","name":"m/a/b","tag":"1","digest":"` + d + `","mediaType":"x","allPlatforms":true,"size":1,"children":[{"digest":"` + d + `"}],"referrers":[{"digest":"` + d + `","subject":"` + d + `","mediaType":"x","tag":"sha256-a.sig"}]}],"chunks":[{"name":"bundle.tar.zst.0000","size":5,"sha256":"` + strings.Repeat("b", 64) + `"}]}`))
	f.Add([]byte(`{"chunks":[{"name":"../../etc/passwd","size":1,"sha256":""}]}`))
	f.Add([]byte(`{"formatVersion":1,"created":"2026-12-07T00:00:00Z","compression":"zstd","layoutSize":10,"objects":1,"images":[{"source":"a/b","name":"m/a/b","digest":"` + d + `","mediaType":"x","allPlatforms":true,"size":1,"publisher":{"authorities":["r"],"verified":["r"],"signatures":[{"authority":"r","format":"legacy","artifact":"` + d + `"}]}}],"leftOut":[{"source":"a/c","name":"m/a/c","digest":"` + d + `","authorities":["r"],"found":["none"]}],"chunks":[{"name":"bundle.tar.zst.0000","size":5,"sha256":"` + strings.Repeat("b", 64) + `"}]}`))
	f.Add([]byte(`{"formatVersion":2,"created":"2026-12-07T00:00:00Z","compression":"zstd","layoutSize":100,"objects":1,"images":[],"chunks":[{"name":"bundle.tar.zst.0000","size":50,"sha256":"` + strings.Repeat("b", 64) + `"}],"entries":[{"name":"oci-layout","size":30,"offset":0,"length":20},{"name":"blobs/sha256/` + strings.Repeat("a", 64) + `","size":5,"offset":20,"length":20},{"name":"index.json","size":5,"offset":40,"length":10}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseBundleManifest(data)
		if err != nil {
			return
		}
		for i, c := range m.Chunks {
			if c.Name != ChunkName(i) || strings.ContainsAny(c.Name, `/\`) || c.Size <= 0 {
				t.Fatalf("accepted chunk %+v", c)
			}
		}
		if m.LayoutSize <= 0 {
			t.Fatal("accepted a non-positive layout size")
		}
		var end, stream int64
		for _, c := range m.Chunks {
			stream += c.Size
		}
		for _, e := range m.Entries {
			if e.Offset < end || e.Length <= 0 || e.Offset+e.Length > stream || e.Size < 0 || e.Size > m.LayoutSize {
				t.Fatalf("accepted entry %+v (previous ends at %d, %d bytes of chunks)", e, end, stream)
			}
			end = e.Offset + e.Length
		}
		for _, img := range m.Images {
			if p := img.Publisher; p != nil && (len(p.Verified) == 0 || len(p.Signatures) == 0) {
				t.Fatalf("accepted a publisher record naming no signature: %+v", p)
			}
		}
		for _, u := range m.LeftOut {
			if !digestPattern.MatchString(u.Digest) {
				t.Fatalf("accepted a left-out image with digest %q", u.Digest)
			}
		}
	})
}

// FuzzIndexedLayout feeds the check of a format 2 bundle's structure (the frames between
// files, the tar headers in them, the listed frames' headers) with chunks and entries as
// an insider could sign them: it must refuse or accept, never panic or run away.
func FuzzIndexedLayout(f *testing.F) {
	for _, seed := range indexedSeeds(f) {
		f.Add(seed.stream, seed.entries, seed.size)
	}
	f.Fuzz(func(t *testing.T, stream, entries []byte, size int64) {
		if len(stream) == 0 || len(stream) > 1<<20 || size <= 0 || size > 1<<24 {
			return
		}
		var es []Entry
		if err := json.Unmarshal(entries, &es); err != nil {
			return
		}
		dir := t.TempDir()
		path := filepath.Join(dir, ChunkName(0))
		if err := os.WriteFile(path, stream, 0o644); err != nil {
			t.Fatal(err)
		}
		blobs := 0
		for _, e := range es {
			if strings.HasPrefix(e.Name, "blobs/") {
				blobs++
			}
		}
		m := &BundleManifest{FormatVersion: 2, Compression: "zstd", LayoutSize: size, Objects: blobs,
			Chunks: []Chunk{{Name: ChunkName(0), Size: int64(len(stream)), SHA256: strings.Repeat("0", 64)}}, Entries: es}
		if m.checkEntries() != nil {
			return
		}
		file, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		src := &frameSource{cs: newChunkSet(m, []*os.File{file}), entries: map[string]Entry{}}
		defer src.cs.close()
		for _, e := range es {
			src.entries[e.Name] = e
		}
		if v, err := checkIndexed(src, m); err == nil {
			for d := range v.Blobs {
				if _, err := src.read(blobName(d), 1<<20); err != nil && !strings.Contains(err.Error(), "layout:") {
					t.Fatalf("reading accepted blob %s: unexpected error %v", d, err)
				}
			}
		}
	})
}

type indexedSeed struct {
	stream, entries []byte
	size            int64
}

// indexedSeeds are a well-formed layout written as collect writes it, and one with a
// stray entry.
func indexedSeeds(f *testing.F) []indexedSeed {
	var out []indexedSeed
	for _, files := range [][]entry{
		{file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)), blob([]byte("hello")), file("index.json", []byte(`{"schemaVersion":2,"manifests":[]}`))},
		{file("oci-layout", []byte(`{}`)), file("../x", []byte("x")), file("index.json", []byte(`{"manifests":[]}`))},
	} {
		dir := f.TempDir()
		cw := &chunkWriter{dir: dir, size: 1 << 20}
		lt, err := newLayoutTar(cw)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range files {
			if err := lt.stream(e.hdr.Name, int64(len(e.data)), bytes.NewReader(e.data), false); err != nil {
				f.Fatal(err)
			}
		}
		if err := lt.close(); err != nil {
			f.Fatal(err)
		}
		if err := cw.finish(); err != nil {
			f.Fatal(err)
		}
		stream, err := os.ReadFile(filepath.Join(dir, ChunkName(0)))
		if err != nil {
			f.Fatal(err)
		}
		es, _ := json.Marshal(lt.fw.entries)
		out = append(out, indexedSeed{stream, es, lt.fw.n})
	}
	return out
}
