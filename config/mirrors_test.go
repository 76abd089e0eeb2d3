package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
)

func TestMirrorsLoad(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	err := cfg.Overlay([]byte(`
mirrors:
  - registry: docker.io
    repositories: ["library/*", "bitnami/**"]
    credentials: {username: bot, passwordEnv: HUB_TOKEN}
    rateLimit: {requestsPerMinute: 100, minRemainingPulls: 10}
    authorities: [docker-official]
    tagFreshness: 5m
  - registry: ghcr.io
    endpoint: http://127.0.0.1:5001
    prefix: public
    repositories: ["**"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	hub, gh := cfg.Mirrors[0], cfg.Mirrors[1]
	if hub.Credentials.PasswordEnv != "HUB_TOKEN" || hub.RateLimit.MinRemainingPulls != 10 || hub.Freshness() != 5*time.Minute {
		t.Errorf("docker.io = %+v", hub)
	}
	if hub.SourceURL() != "https://registry-1.docker.io" || gh.SourceURL() != "http://127.0.0.1:5001" {
		t.Errorf("SourceURL = %s, %s", hub.SourceURL(), gh.SourceURL())
	}
	if gh.Freshness() != 10*time.Minute {
		t.Errorf("default freshness = %s, want 10m", gh.Freshness())
	}
}

func TestMirrorsValidate(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Mirrors = []config.Mirror{
		{Registry: "https://docker.io", Repositories: []string{"library/*"}},
		{Registry: "ghcr.io", Endpoint: "ftp://x", Prefix: "Bad Prefix",
			Credentials:  config.MirrorCredentials{PasswordFile: "/p", PasswordEnv: "X"},
			Repositories: []string{"a/**b", "/x", "UPPER"},
			RateLimit:    config.MirrorRateLimit{RequestsPerMinute: -1, MinRemainingPulls: -2},
			Authorities:  []string{" "}, TagFreshness: config.Duration(-time.Second)},
		{Registry: "quay.io"},
		{Registry: "index.docker.io", Repositories: []string{"**"}, Credentials: config.MirrorCredentials{Username: "u", UsernameEnv: "U", PasswordEnv: "1BAD"}},
		{Registry: "registry-1.docker.io", Repositories: []string{"**"}},
	}
	err := cfg.Validate()
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want *ValidationError", err)
	}
	want := []string{
		"mirrors[0].registry: invalid registry host",
		"mirrors[1].endpoint: scheme must be http or https",
		"mirrors[1].prefix: invalid repository path",
		"mirrors[1].credentials: set passwordFile or passwordEnv, not both",
		"mirrors[1].credentials.username: required with a password",
		`mirrors[1].repositories[0]: invalid glob "a/**b"`,
		`mirrors[1].repositories[1]: invalid glob "/x"`,
		`mirrors[1].repositories[2]: invalid glob "UPPER"`,
		"mirrors[1].rateLimit.requestsPerMinute: must not be negative",
		"mirrors[1].rateLimit.minRemainingPulls: must not be negative",
		"mirrors[1].authorities[0]: want the name of an authority",
		"mirrors[1].tagFreshness: must not be negative",
		"mirrors[2].repositories: required",
		"mirrors[3].credentials: set username or usernameEnv, not both",
		`mirrors[3].credentials.passwordEnv: invalid environment variable name "1BAD"`,
		"mirrors[4].registry: registry-1.docker.io is mirrored by mirrors[3] already",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if n := len(ve.Problems); n != len(want) {
		t.Errorf("%d problems, want %d:\n%s", n, len(want), got)
	}
}
