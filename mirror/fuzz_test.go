package mirror

import (
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
