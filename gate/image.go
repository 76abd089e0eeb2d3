package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// ImageReader reads manifests and blobs from the upstream, size-capped and digest-checked,
// as the gateway's service account.
type ImageReader interface {
	Manifest(ctx context.Context, repo, ref string) (body []byte, mediaType string, err error)
	Blob(ctx context.Context, repo, digest string, max int64) ([]byte, error)
}

// WithImages lets the gate read image configurations, for config and secret rules.
// Without it those rules find no evidence and the environment's fail mode applies.
func WithImages(r ImageReader) Option { return func(g *Gate) { g.blobs = r } }

// imageAnalyzerVersion changes whenever what imageEvidence derives from a config changes,
// so cached evidence of an older analysis is never read.
const imageAnalyzerVersion = "config/1"

// maxConfigBytes caps the image configuration blob the gate reads.
const maxConfigBytes = 4 << 20

// imageEvidence reads what an image's configuration shows: user, labels, base image and
// secrets in its Env, labels and build history. Indexes carry no config: their platform
// manifests are judged on their own. Results are cached by config digest.
func (g *Gate) imageEvidence(ctx context.Context, repo, digest string, manifest []byte) (*policy.ImageEvidence, error) {
	if g.blobs == nil {
		return nil, errString("this gateway reads no image configurations (no image reader configured)")
	}
	if len(manifest) == 0 {
		// A HEAD: the client has not asked for the bytes, but the decision needs them.
		var err error
		if manifest, _, err = g.blobs.Manifest(ctx, repo, digest); err != nil {
			return nil, fmt.Errorf("reading the manifest: %w", err)
		}
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Config    *struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Manifests   []json.RawMessage `json:"manifests"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if m.Config == nil {
		if m.Manifests != nil || strings.Contains(m.MediaType, "index") || strings.Contains(m.MediaType, "list") {
			return &policy.ImageEvidence{Index: true}, nil
		}
		return nil, fmt.Errorf("the manifest names no config blob")
	}
	key := cache.ImageKey(m.Config.Digest, imageAnalyzerVersion)
	var ev policy.ImageEvidence
	if raw, ok, _ := g.coverage.store.Get(ctx, key); ok && cache.Decode(raw, cache.KindImage, 1, &ev) {
		return withBase(&ev, m.Annotations), nil
	}
	blob, err := g.blobs.Blob(ctx, repo, m.Config.Digest, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the image configuration %s: %w", m.Config.Digest, err)
	}
	ev, err = inspectConfig(blob)
	if err != nil {
		return nil, err
	}
	if v, err := cache.Encode(cache.KindImage, 1, ev); err == nil {
		_ = g.coverage.store.Set(context.WithoutCancel(ctx), key, v, 7*24*time.Hour)
	}
	return withBase(&ev, m.Annotations), nil
}

// withBase takes the base image from the manifest's annotation when the config's label
// did not name one.
func withBase(ev *policy.ImageEvidence, annotations map[string]string) *policy.ImageEvidence {
	if b := annotations[baseNameKey]; b != "" && ev.BaseImage == "" {
		out := *ev
		out.BaseImage = b
		return &out
	}
	return ev
}

// baseNameKey is the OCI annotation (and label) naming an image's base image.
const baseNameKey = "org.opencontainers.image.base.name"

// inspectConfig derives the evidence from an image configuration blob.
func inspectConfig(blob []byte) (policy.ImageEvidence, error) {
	var c struct {
		Config struct {
			User   string            `json:"User"`
			Env    []string          `json:"Env"`
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
		History []struct {
			CreatedBy string `json:"created_by"`
		} `json:"history"`
	}
	if err := json.Unmarshal(blob, &c); err != nil {
		return policy.ImageEvidence{}, fmt.Errorf("the image configuration is not valid JSON: %w", err)
	}
	ev := policy.ImageEvidence{User: c.Config.User, Labels: c.Config.Labels, BaseImage: c.Config.Labels[baseNameKey]}
	ev.RunsAsRoot, ev.RootReason = runsAsRoot(c.Config.User)
	add := func(found []secrets.Secret) {
		for _, s := range found {
			ev.Secrets = append(ev.Secrets, policy.SecretFinding{Type: s.Type, Location: s.Source, Excerpt: s.Redacted})
		}
	}
	for i, e := range c.Config.Env {
		add(secrets.ScanEnv(fmt.Sprintf("config Env[%d]", i), e))
	}
	for k, v := range c.Config.Labels {
		add(secrets.ScanText("config label "+k, v))
	}
	for i, h := range c.History {
		add(secrets.ScanText(fmt.Sprintf("history[%d] created_by", i), h.CreatedBy))
	}
	return ev, nil
}

// runsAsRoot reads a config User ("", "0", "root", "0:0", "root:staff", "1000:0", "app").
func runsAsRoot(user string) (bool, string) {
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	switch u {
	case "":
		return true, "no USER is set"
	case "0", "root":
		return true, fmt.Sprintf("USER is %q", user)
	}
	return false, ""
}
