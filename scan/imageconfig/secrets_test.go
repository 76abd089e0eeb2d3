package imageconfig

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// The credentials below are generated: well-formed, random, valid nowhere.

var rng = mrand.New(mrand.NewPCG(3, 4))

func randFrom(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

const base62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func TestSecretsInConfig(t *testing.T) {
	awsID := "AKIA" + randFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
	awsSecret := randFrom(base62+"+/", 40)
	dbPass := randFrom(base62, 24)
	npmTok := "npm_" + randFrom(base62, 36)
	argPass := randFrom(base62, 20)
	ghOld := "ghp_" + randFrom(base62, 36)
	apiKey := randFrom(base62, 32)
	ghClone := "ghs_" + randFrom(base62, 36)
	hook := "https://hooks.slack.com/services/T" + randFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8) + "/B" + randFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10) + "/" + randFrom(base62, 24)
	cmdPass := randFrom(base62, 18)
	sigKey := randFrom(base62, 30)
	raw := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config": map[string]any{
			"User": "10001",
			"Env": []string{
				"PATH=/usr/local/bin:/usr/bin:/bin",
				"AWS_ACCESS_KEY_ID=" + awsID,
				"AWS_SECRET_ACCESS_KEY=" + awsSecret,
				"DB_PASSWORD=" + dbPass,
				"DB_PASSWORD_FILE=/run/secrets/db",
				"GITHUB_TOKEN=",
			},
			"Cmd":    []string{"app", "--db", "postgres://app:" + cmdPass + "@db.internal/app"},
			"Labels": map[string]string{"com.acme.alerts": hook, "org.opencontainers.image.source": "https://github.com/acme/app"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:63ca1fbb43ae5034640e5e6cb3e083e05c290072c5366fcaa9d62435a4cced85"}},
		"history": []map[string]any{
			{"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
			{"created_by": "RUN |2 NPM_TOKEN=" + npmTok + " DB_ADMIN_PASSWORD=" + argPass + " /bin/sh -c npm ci && rm -f .npmrc"},
			{"created_by": "/bin/sh -c #(nop)  ENV GITHUB_TOKEN=" + ghOld, "empty_layer": true},
			{"created_by": "ENV API_KEY=" + apiKey + " LOG_LEVEL=info", "empty_layer": true},
			{"created_by": "ARG SIGNING_SECRET", "empty_layer": true},
			{"created_by": "/bin/sh -c #(nop) ARG SIGNING_SECRET=" + sigKey, "empty_layer": true},
			{"created_by": "RUN /bin/sh -c git clone https://x-access-token:" + ghClone + "@github.com/acme/lib.git # buildkit"},
			{"created_by": "/bin/sh -c #(nop) ENV JAVA_HOME /opt/java/openjdk", "empty_layer": true},
			{"created_by": "ENV DB_PASSWORD=" + dbPass, "empty_layer": true},
		},
	}
	data, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	got := SecretsInConfig(cfg)
	want := []struct{ typ, source, raw string }{
		{secrets.TypeAWSAccessKeyID, "config.Env[1] AWS_ACCESS_KEY_ID", awsID},
		{secrets.TypeAWSSecretAccessKey, "config.Env[2] AWS_SECRET_ACCESS_KEY", awsSecret},
		{secrets.TypeEnvironmentSecret, "config.Env[3] DB_PASSWORD", dbPass},
		{secrets.TypeSlackWebhook, `config.Labels["com.acme.alerts"]`, hook[8:]},
		{secrets.TypeURLCredentials, "config.Cmd", cmdPass},
		{secrets.TypeNPMToken, "history[1].created_by build-arg", npmTok},
		{secrets.TypeEnvironmentSecret, "history[1].created_by build-arg", argPass},
		{secrets.TypeGitHubToken, "history[2].created_by ENV", ghOld},
		{secrets.TypeEnvironmentSecret, "history[3].created_by ENV", apiKey},
		{secrets.TypeEnvironmentSecret, "history[5].created_by ARG", sigKey},
		{secrets.TypeGitHubToken, "history[6].created_by", ghClone},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d findings, want %d:\n%s", len(got), len(want), dump(got))
	}
	out, _ := json.Marshal(got)
	for i, w := range want {
		if got[i].Type != w.typ || got[i].Source != w.source || got[i].Path != "" {
			t.Errorf("finding %d = %+v, want %s at %s", i, got[i], w.typ, w.source)
		}
		if strings.Contains(string(out), w.raw) {
			t.Errorf("the findings reveal %s", w.typ)
		}
	}
	// The config checks agree with what the image says about itself.
	if root, reason := RunsAsRoot(cfg); root {
		t.Errorf("uid 10001 reported as root: %s", reason)
	}
	if SecretsInConfig(nil) != nil {
		t.Error("nil config has secrets")
	}
}

func TestSecretsInCleanConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(nginxConfig))
	if err != nil {
		t.Fatal(err)
	}
	if got := SecretsInConfig(cfg); got != nil {
		t.Fatalf("clean config: %s", dump(got))
	}
}

func dump(s []secrets.Secret) string {
	var b strings.Builder
	for _, x := range s {
		fmt.Fprintf(&b, "  %+v\n", x)
	}
	return b.String()
}
