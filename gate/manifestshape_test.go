package gate_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/gate"
)

func TestClassifyManifest(t *testing.T) {
	const (
		cfg    = `"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aa","size":2}`
		layers = `"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:bb","size":3}]`
		mans   = `"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","size":4}]`
	)
	tests := []struct {
		name, body, served string
		want               gate.ManifestShape
		err                string
	}{
		{"oci image", `{"schemaVersion":2,"mediaType":"` + gate.MediaTypeOCIManifest + `",` + cfg + `,` + layers + `}`, "", gate.ShapeImage, ""},
		{"docker image", `{"schemaVersion":2,"mediaType":"` + gate.MediaTypeDockerManifest + `",` + cfg + `,` + layers + `}`, gate.MediaTypeDockerManifest, gate.ShapeImage, ""},
		{"oci index", `{"schemaVersion":2,"mediaType":"` + gate.MediaTypeOCIIndex + `",` + mans + `}`, "", gate.ShapeIndex, ""},
		{"docker list", `{"schemaVersion":2,"mediaType":"` + gate.MediaTypeDockerList + `",` + mans + `}`, "", gate.ShapeIndex, ""},
		{"image without mediaType, served as one", `{"schemaVersion":2,` + cfg + `,` + layers + `}`, gate.MediaTypeOCIManifest + "; charset=utf-8", gate.ShapeImage, ""},
		{"image without any media type", `{"schemaVersion":2,` + cfg + `,` + layers + `}`, "", gate.ShapeImage, ""},
		{"index without any media type", `{"schemaVersion":2,` + mans + `}`, "", gate.ShapeIndex, ""},
		{"image with manifests", `{"schemaVersion":2,"mediaType":"` + gate.MediaTypeOCIManifest + `",` + cfg + `,` + layers + `,` + mans + `}`, "", 0,
			`an image manifest (application/vnd.oci.image.manifest.v1+json) carrying "manifests"`},
		{"image with empty manifests", `{"mediaType":"` + gate.MediaTypeDockerManifest + `",` + cfg + `,"manifests":[]}`, "", 0, `carrying "manifests"`},
		{"image with Manifests, as Go reads it", `{"mediaType":"` + gate.MediaTypeOCIManifest + `",` + cfg + `,"Manifests":[]}`, "", 0, `carrying "manifests"`},
		{"index with config", `{"mediaType":"` + gate.MediaTypeOCIIndex + `",` + cfg + `,` + mans + `}`, "", 0,
			`an image index (application/vnd.oci.image.index.v1+json) carrying "config" or "layers"`},
		{"index with layers", `{"mediaType":"` + gate.MediaTypeDockerList + `",` + layers + `,` + mans + `}`, "", 0, `carrying "config" or "layers"`},
		{"unknown type with both", `{"mediaType":"application/x-mystery",` + cfg + `,` + mans + `}`, "", 0,
			`a manifest of media type "application/x-mystery" carrying both "manifests" and "config" or "layers"`},
		{"no type with both", `{` + layers + `,` + mans + `}`, "", 0, `carrying both`},
		{"served as an index, says image", `{"mediaType":"` + gate.MediaTypeOCIManifest + `",` + cfg + `}`, gate.MediaTypeOCIIndex, 0,
			`says its mediaType is "application/vnd.oci.image.manifest.v1+json" but was served as "application/vnd.oci.image.index.v1+json"`},
		{"image without config", `{"mediaType":"` + gate.MediaTypeOCIManifest + `",` + layers + `}`, "", 0, "without a config"},
		{"neither", `{"schemaVersion":2}`, "", 0, "with neither a config nor manifests"},
		{"null manifests are absent", `{"mediaType":"` + gate.MediaTypeOCIManifest + `",` + cfg + `,"manifests":null}`, "", gate.ShapeImage, ""},
		{"not an object", `[1,2]`, "", 0, "not a JSON object"},
		{"two media types", `{"mediaType":"` + gate.MediaTypeOCIIndex + `","MediaType":"` + gate.MediaTypeOCIManifest + `",` + cfg + `}`, "", 0, "two mediaType fields"},
		{"mediaType not a string", `{"mediaType":5,` + cfg + `}`, "", 0, "mediaType is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gate.ClassifyManifest([]byte(tt.body), tt.served)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func FuzzClassifyManifest(f *testing.F) {
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`), "")
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), "application/vnd.oci.image.index.v1+json")
	f.Add([]byte(`{"config":{},"manifests":[],"MediaType":"x"}`), "application/json")
	f.Fuzz(func(t *testing.T, body []byte, served string) {
		shape, err := gate.ClassifyManifest(body, served)
		if err != nil {
			if shape != 0 {
				t.Fatalf("shape %v with error %v", shape, err)
			}
			return
		}
		if shape != gate.ShapeImage && shape != gate.ShapeIndex {
			t.Fatalf("shape %v without an error", shape)
		}
		// What is classified has one shape only, whichever of the two a reader uses.
		var fields map[string]any
		if json.Unmarshal(body, &fields) != nil {
			t.Fatalf("classified %q, which is not a JSON object", body)
		}
		var image, index bool
		for k, v := range fields {
			switch strings.ToLower(k) {
			case "config", "layers":
				image = image || v != nil
			case "manifests":
				index = index || v != nil
			}
		}
		if image && index {
			t.Fatalf("classified %q as %v though it has both shapes", body, shape)
		}
	})
}
