package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestClassify decides real manifest shapes: what each tool pushes, and what an attacker
// pushes to pass an image off as an artifact.
func TestClassify(t *testing.T) {
	tests := []struct {
		file    string
		want    Kind
		problem bool
	}{
		{"oci-image.json", KindImage, false},
		{"docker-image.json", KindImage, false},
		{"docker-schema1.json", KindImage, false},
		{"oci-index.json", KindIndex, false},
		{"docker-manifest-list.json", KindIndex, false},
		{"cosign-v2-sig.json", KindSignature, false},
		{"cosign-v2-att.json", KindAttestation, false},
		{"cosign-v2-sbom.json", KindSBOM, false},
		{"cosign-v3-bundle.json", KindSignature, false},
		{"cosign-v3-attestation.json", KindAttestation, false},
		{"in-toto-attestation.json", KindAttestation, false},
		{"oras-artifact.json", KindArtifact, false},
		{"oras-referrer.json", KindSignature, false},
		{"helm-chart.json", KindArtifact, false},
		{"referrers-index.json", KindReferrers, false},
		// Hostile: an image that names a subject and an artifactType is still an image.
		{"oci-image-with-subject.json", KindImage, false},
		// Hostile: an index entry with a platform is what containerd picks: an image index.
		{"index-hidden-image.json", KindIndex, false},
		// Hostile: a signature layer next to an image layer does not hide the image.
		{"sig-with-image-layer.json", KindImage, false},
		{"both-index-and-manifest.json", KindImage, true},
		{"untyped-layers.json", KindImage, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "manifests", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			c := Classify(body)
			if c.Kind != tt.want || (c.Problem != "") != tt.problem {
				t.Fatalf("Classify = %+v, want kind %s, problem %v", c, tt.want, tt.problem)
			}
		})
	}
}

func TestClassifyMalformed(t *testing.T) {
	for _, body := range []string{`not json`, `{}`, `[]`, `{"schemaVersion":2}`, `{"config":null,"layers":null}`} {
		c := Classify([]byte(body))
		if c.Kind != KindImage || c.Problem == "" {
			t.Errorf("Classify(%s) = %+v, want an image with a problem", body, c)
		}
	}
	if c := Classify(nil); c.Kind != KindUnknown || c.Kind.IsArtifact() {
		t.Errorf("Classify(nil) = %+v, want unknown, not an artifact", c)
	}
}

func TestArtifactTagKind(t *testing.T) {
	h := "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for tag, want := range map[string]Kind{h + ".sig": KindSignature, h + ".att": KindAttestation, h + ".sbom": KindSBOM, h: KindReferrers, "1.0": "", h + ".foo": ""} {
		if got := ArtifactTagKind(tag); got != want {
			t.Errorf("ArtifactTagKind(%q) = %q, want %q", tag, got, want)
		}
	}
}

// FuzzClassify checks that Classify never panics and that what makes a manifest an image
// cannot be undone by a field a client controls: adding a subject, an artifactType or
// artifact annotations never turns an image (or anything judged as one) into an artifact.
func FuzzClassify(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "manifests", "*.json"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"manifests":[],"layers":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := Classify(body)
		if c.Problem != "" && c.Kind != KindImage {
			t.Fatalf("malformed manifest classified %s", c.Kind)
		}
		var obj map[string]any
		if c.Kind.IsArtifact() || json.Unmarshal(body, &obj) != nil || obj == nil {
			return
		}
		obj["subject"] = map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "ab", "size": 1}
		obj["artifactType"] = "application/vnd.dev.sigstore.bundle.v0.3+json"
		obj["annotations"] = map[string]any{"dev.sigstore.bundle.content": "message-signature"}
		b, err := json.Marshal(obj)
		if err != nil {
			return
		}
		if d := Classify(b); d.Kind.IsArtifact() {
			t.Fatalf("adding a subject and artifactType turned a %s into %s: %s", c.Kind, d.Kind, b)
		}
	})
}
