package mirror

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseFileReportsEveryProblemWithItsPath(t *testing.T) {
	y := `version: 1
target: {prefix: "Bad Prefix"}
sources:
  - registry: https://docker.io
    platforms: [linux]
    repositories:
      - name: library/nginx
        tags: ["1.27", "bad tag"]
        digests: [sha256:abc]
        tagRegex: ["(unclosed"]
        semver: ">=> 1"
        platforms: [linux/amd64, windows]
      - name: Upper/Case
        tags: [x]
      - name: ok/empty
  - registry: ghcr.io
    repositories: []
  - registry: quay.io
    repositories:
      - {name: a/b, tags: [v1], as: same/name}
      - {name: c/d, tags: [v1], as: same/name}
`
	_, err := ParseFile(strings.NewReader(y))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v, want a *ValidationError", err)
	}
	var paths []string
	for _, p := range ve.Problems {
		paths = append(paths, p.Path)
	}
	want := []string{
		"target.prefix",
		"sources[0].registry",
		"sources[0].platforms[0]",
		"sources[0].repositories[0].tags[1]",
		"sources[0].repositories[0].digests[0]",
		"sources[0].repositories[0].tagRegex[0]",
		"sources[0].repositories[0].semver",
		"sources[0].repositories[0].platforms[1]",
		"sources[0].repositories[1].name",
		"sources[0].repositories[2]",
		"sources[1].repositories",
		"sources[2].repositories[1]",
	}
	if !slices.Equal(paths, want) {
		t.Fatalf("problems:\n%v\nwant paths %v", err, want)
	}
	if !strings.Contains(err.Error(), "sources[0].repositories[0].semver: invalid range") {
		t.Fatalf("error %v lacks the semver message", err)
	}
}

func TestParseFileStrict(t *testing.T) {
	for name, y := range map[string]string{
		"unknown field":   "version: 1\nsources:\n  - registry: a.io\n    repositories: [{name: x, tags: [v1], tag: v2}]\n",
		"wrong type":      "version: one\n",
		"two documents":   "version: 1\nsources: [{registry: a.io, repositories: [{name: x, tags: [v1]}]}]\n---\nversion: 1\n",
		"empty":           "",
		"no sources":      "version: 1\n",
		"unknown version": "version: 2\nsources: [{registry: a.io, repositories: [{name: x, tags: [v1]}]}]\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseFile(strings.NewReader(y)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestMappedName(t *testing.T) {
	y := `version: 1
sources:
  - registry: docker.io
    repositories:
      - {name: nginx, tags: ["1.27"]}
      - {name: bitnami/redis, tags: ["7"]}
      - {name: library/busybox, tags: ["1"], as: base/busybox}
  - registry: registry.local:5000
    prefix: "-"
    repositories:
      - {name: team/app, tags: ["1"]}
  - registry: ghcr.io
    prefix: upstream
    repositories:
      - {name: org/tool, tags: ["1"]}
`
	f, err := ParseFile(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range f.Sources {
		for _, r := range s.Repositories {
			got = append(got, f.MappedName(s, r))
		}
	}
	want := []string{"mirror/docker.io/library/nginx", "mirror/docker.io/bitnami/redis", "base/busybox", "registry.local_5000/team/app", "upstream/ghcr.io/org/tool"}
	if !slices.Equal(got, want) {
		t.Fatalf("mapped %v, want %v", got, want)
	}
	repo, err := SourceRepository(f.Sources[0], f.Sources[0].Repositories[0])
	if err != nil || repo.String() != "index.docker.io/library/nginx" {
		t.Fatalf("source repository %v, %v", repo, err)
	}
}

func TestSelectTags(t *testing.T) {
	all := map[string]bool{"1.26.0": true, "1.27.1": true, "1.27.2-rc1": true, "1.28.0": true, "v1.27.3": true, "latest": true, "alpine": true, "1.27-alpine": true,
		"sha256-" + strings.Repeat("a", 64) + ".sig": true, "sha256-" + strings.Repeat("a", 64): true, "../../1.27-alpine": true, "-v1-alpine": true}
	r := Repository{Tags: []string{"stable"}, TagRegex: []string{`-alpine$`, `^sha256`}, Semver: ">=1.27, <1.28"}
	got, err := selectTags(nil, "x", r, func() (map[string]bool, error) { return all, nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1.27-alpine", "1.27.1", "stable", "v1.27.3"}
	if !slices.Equal(got, want) {
		t.Fatalf("selected %v, want %v", got, want)
	}
}
