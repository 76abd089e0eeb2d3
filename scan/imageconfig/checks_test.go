package imageconfig

import (
	"slices"
	"strings"
	"testing"
)

func TestRunsAsRoot(t *testing.T) {
	for _, tt := range []struct {
		user   string
		root   bool
		reason string // a part of the reason
	}{
		{"", true, "no USER"},
		{"   ", true, "no USER"},
		{"root", true, "is root"},
		{"0", true, "uid 0"},
		{"00", true, "uid 0"},
		{"0:0", true, "uid 0"},
		{"root:root", true, "is root"},
		{"0:1000", true, "uid 0"},
		{"root:1000", true, "is root"},
		{":1000", true, "no user"},
		{":", true, "no user"},
		{"1000", false, "uid 1000"},
		{"65532:65532", false, "uid 65532"},
		{"1000:0", false, "root group"},
		{"1000:root", false, "root group"},
		{"nobody", false, `user "nobody"`},
		{"nginx:nginx", false, `user "nginx"`},
		{"app:0", false, "root group"},
		{"ROOT", false, `user "ROOT"`},
		{"4294967295", false, "uid 4294967295"},
		{"4294967296", false, "out of range"},
		{"99999999999999999999999", false, "out of range"},
		{"-1", false, `user "-1"`},
	} {
		root, reason := RunsAsRoot(&Config{Config: ContainerConfig{User: tt.user}})
		if root != tt.root || !strings.Contains(reason, tt.reason) {
			t.Errorf("RunsAsRoot(User %q) = %v, %q; want %v and a reason with %q", tt.user, root, reason, tt.root, tt.reason)
		}
	}
	if root, _ := RunsAsRoot(nil); !root {
		t.Error("RunsAsRoot(nil) = false")
	}
}

func TestBaseImage(t *testing.T) {
	labels := map[string]string{AnnotationBaseName: "docker.io/library/debian:12", AnnotationBaseDigest: "sha256:aaaa"}
	annotations := map[string]string{AnnotationBaseName: "docker.io/library/debian:12-slim", AnnotationBaseDigest: "sha256:bbbb"}
	for _, tt := range []struct {
		name                 string
		labels, annotations  map[string]string
		wantName, wantDigest string
	}{
		{"annotations win", labels, annotations, "docker.io/library/debian:12-slim", "sha256:bbbb"},
		{"labels only", labels, nil, "docker.io/library/debian:12", "sha256:aaaa"},
		{"annotations only", nil, annotations, "docker.io/library/debian:12-slim", "sha256:bbbb"},
		{"each field separately", map[string]string{AnnotationBaseDigest: "sha256:cccc"}, map[string]string{AnnotationBaseName: "alpine:3.20", AnnotationBaseDigest: " "}, "alpine:3.20", "sha256:cccc"},
		{"neither", map[string]string{"maintainer": "x"}, map[string]string{}, "", ""},
	} {
		name, digest := BaseImage(&Config{Config: ContainerConfig{Labels: tt.labels}}, tt.annotations)
		if name != tt.wantName || digest != tt.wantDigest {
			t.Errorf("%s: got %q %q, want %q %q", tt.name, name, digest, tt.wantName, tt.wantDigest)
		}
	}
	if name, digest := BaseImage(nil, annotations); name != "docker.io/library/debian:12-slim" || digest != "sha256:bbbb" {
		t.Errorf("nil config: %q %q", name, digest)
	}
}

func TestMissingLabels(t *testing.T) {
	cfg := &Config{Config: ContainerConfig{Labels: map[string]string{
		"org.opencontainers.image.source":   "https://github.com/acme/app",
		"org.opencontainers.image.revision": "  ",
		"team":                              "payments",
	}}}
	required := []string{"org.opencontainers.image.source", "org.opencontainers.image.revision", "owner", "team", "owner", "Team"}
	got := MissingLabels(cfg, required)
	if want := []string{"org.opencontainers.image.revision", "owner", "Team"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := MissingLabels(cfg, nil); got != nil {
		t.Errorf("no requirements: %v", got)
	}
	if got := MissingLabels(nil, []string{"a"}); !slices.Equal(got, []string{"a"}) {
		t.Errorf("nil config: %v", got)
	}
}
