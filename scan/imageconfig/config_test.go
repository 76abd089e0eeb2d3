package imageconfig

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// nginxConfig is an image config as docker build writes it (trimmed).
const nginxConfig = `{
  "architecture": "amd64",
  "os": "linux",
  "config": {
    "User": "101:101",
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.27.3"],
    "Entrypoint": ["/docker-entrypoint.sh"],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "WorkingDir": "/",
    "ExposedPorts": {"8080/tcp": {}},
    "Labels": {
      "maintainer": "NGINX Docker Maintainers <docker-maint@nginx.com>",
      "org.opencontainers.image.source": "https://github.com/acme/web",
      "org.opencontainers.image.base.name": "docker.io/library/nginx:1.27-alpine",
      "org.opencontainers.image.base.digest": "sha256:4ff102c5d78d254a6f0da062b3cf39eaf07f01eec0927fd21e219d0af8bc0591"
    }
  },
  "rootfs": {"type": "layers", "diff_ids": [
    "sha256:63ca1fbb43ae5034640e5e6cb3e083e05c290072c5366fcaa9d62435a4cced85",
    "sha256:b8f1b4d9ad9b0f8e5d4d17f3b4d1f5a3f5d9e4e0b9b3f62a0d8d1a0b3c2d1e0f"
  ]},
  "history": [
    {"created": "2024-11-12T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:1f4eb46669b5b6275af19eb7471a6899a0f0a5f3b4b4f3bf4d1d0f1c1e1a1b1c in / "},
    {"created": "2024-11-12T00:00:01Z", "created_by": "/bin/sh -c #(nop)  CMD [\"/bin/sh\"]", "empty_layer": true}
  ]
}`

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(nginxConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "101:101" || len(cfg.Config.Env) != 2 || cfg.Config.Labels["maintainer"] == "" ||
		len(cfg.RootFS.DiffIDs) != 2 || cfg.RootFS.Type != "layers" || len(cfg.History) != 2 || !cfg.History[1].EmptyLayer ||
		!strings.Contains(cfg.History[0].CreatedBy, "ADD file:") || cfg.OS != "linux" || !slices.Equal(cfg.Config.Cmd, []string{"nginx", "-g", "daemon off;"}) {
		t.Fatalf("parsed %+v", cfg)
	}
	// A config with no "config" object (scratch, FROM-only) parses empty.
	cfg, err = ParseConfig([]byte(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	if err != nil || cfg.Config.User != "" || cfg.Config.Labels != nil {
		t.Fatalf("got %+v, %v", cfg, err)
	}
}

func TestParseConfigMalformed(t *testing.T) {
	for _, tt := range []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"blank", " \n\t"},
		{"null", "null"},
		{"array", `[{"config":{}}]`},
		{"string", `"config"`},
		{"truncated", `{"config": {"User": "root"`},
		{"trailing garbage", `{"config": {}} {"config": {}}`},
		{"user not a string", `{"config": {"User": 0}}`},
		{"env not a list", `{"config": {"Env": "A=B"}}`},
		{"env entry not a string", `{"config": {"Env": [1]}}`},
		{"label value not a string", `{"config": {"Labels": {"a": 1}}}`},
		{"history not a list", `{"history": {"created_by": "x"}}`},
		{"diff_ids not strings", `{"rootfs": {"type": "layers", "diff_ids": [1]}}`},
		{"invalid utf-8 framing", "{\xff}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if cfg, err := ParseConfig([]byte(tt.data)); err == nil {
				t.Fatalf("parsed %+v", cfg)
			}
		})
	}
	big := []byte(`{"config":{"Env":["` + strings.Repeat("A", MaxConfigBytes) + `"]}}`)
	if _, err := ParseConfig(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized config: %v", err)
	}
	if _, err := ParseManifestAnnotations(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized manifest: %v", err)
	}
}

func TestParseManifestAnnotations(t *testing.T) {
	manifest := `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:3b3d3f5b2b0c6f0b6b5f2f8e1c1b0f6f4e0b2f3b5b6c3d2e1f0a9b8c7d6e5f4a", "size": 1469},
  "layers": [],
  "annotations": {"org.opencontainers.image.base.name": "cgr.dev/chainguard/static:latest", "org.opencontainers.image.created": "2026-11-01T10:00:00Z"}
}`
	a, err := ParseManifestAnnotations([]byte(manifest))
	if err != nil || a[AnnotationBaseName] != "cgr.dev/chainguard/static:latest" || len(a) != 2 {
		t.Fatalf("got %v, %v", a, err)
	}
	if a, err := ParseManifestAnnotations([]byte(`{"schemaVersion":2}`)); err != nil || a != nil {
		t.Fatalf("got %v, %v", a, err)
	}
	for _, bad := range []string{"", "[]", `{"annotations": ["a"]}`, `{"annotations": {"a": 1}}`, `{`} {
		if _, err := ParseManifestAnnotations([]byte(bad)); err == nil {
			t.Errorf("ParseManifestAnnotations(%q) succeeded", bad)
		}
	}
}
