package verify

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
)

func TestPAEMatchesTheDSSEReference(t *testing.T) {
	for _, c := range []struct{ typ, body string }{
		{"", ""},
		{payloadTypeInToto, `{"_type":"https://in-toto.io/Statement/v1"}`},
		{"http://example.com/HelloWorld", "hello world"},
		{"ünïcode", strings.Repeat("\x00", 300)},
	} {
		if got, want := pae(c.typ, []byte(c.body)), ssldsse.PAE(c.typ, []byte(c.body)); !bytes.Equal(got, want) {
			t.Errorf("pae(%q, %q) = %q, want %q", c.typ, c.body, got, want)
		}
	}
}

func TestCheckJSONObject(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{`{}`, true},
		{`{"a":1,"b":[1,{"a":2}],"c":{"a":{"a":3}}}`, true},
		{` {"a":[[],[{}],{"x":[1]}]} `, true},
		{`{"a":1,"a":2}`, false},
		{`{"critical":{},"CRITICAL":{}}`, false},
		{`{"K":1,"\u212a":2}`, false}, // Kelvin sign folds to k, as encoding/json matches it
		{`{"s":1,"\u017f":2}`, false}, // long s folds to s
		{`{"a":{"b":1,"b":2}}`, false},
		{`{"a":[{"b":1,"b":2}]}`, false},
		{`{"a":{"b":1},"b":2}`, true},
		{`[]`, false},
		{`"x"`, false},
		{`{}{}`, false},
		{`{} x`, false},
		{`{"a":}`, false},
		{``, false},
	}
	for _, c := range cases {
		if err := checkJSONObject([]byte(c.in)); (err == nil) != c.ok {
			t.Errorf("checkJSONObject(%s) = %v, want ok=%v", c.in, err, c.ok)
		}
	}
}

func TestParseSimpleSigning(t *testing.T) {
	cases := []struct {
		in, err string
	}{
		{`{"critical":{"identity":{"docker-reference":"r/a"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}`, ""},
		{`{"critical":{"image":{"docker-manifest-digest":"sha256:ab"}}}`, ""},
		{`{"optional":{}}`, "no critical"},
		{`{"critical":{"image":{}}}`, "docker-manifest-digest"},
		{`{"critical":"x"}`, "cannot unmarshal"},
		{`{"critical":{"image":{"docker-manifest-digest":"sha256:ab"}},"critical":{"image":{"docker-manifest-digest":"sha256:cd"}}}`, "twice"},
		{`not json`, "not JSON"},
	}
	for _, c := range cases {
		_, err := parseSimpleSigning([]byte(c.in))
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("parseSimpleSigning(%s) = %v, want error containing %q", c.in, err, c.err)
		}
	}
}

func TestParseDigest(t *testing.T) {
	for _, ok := range []string{"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128)} {
		if _, err := parseDigest(ok); err != nil {
			t.Errorf("parseDigest(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "sha256", "sha256:" + strings.Repeat("A", 64), "sha256:abc", "md5:" + strings.Repeat("a", 32), "sha256:" + strings.Repeat("a", 63) + "g"} {
		if _, err := parseDigest(bad); err == nil {
			t.Errorf("parseDigest(%q): no error", bad)
		}
	}
}

// seeds adds every golden file as a fuzz seed.
func seeds(f *testing.F, glob string) {
	paths, _ := filepath.Glob(filepath.Join("testdata", glob))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzSimpleSigning(f *testing.F) {
	seeds(f, "legacy-*.payload.json")
	f.Add([]byte(`{"critical":{"image":{"docker-manifest-digest":"x"}}}`))
	keys := goldenKeys(f)
	img, _ := parseDigest(goldenImage)
	_, sig := goldenLegacy(f, cosignSignatureType, goldenImage)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseSimpleSigning(data)
		if err == nil && (p.Critical == nil || p.Critical.Image.DockerManifestDigest == "") {
			t.Fatalf("parsed without a digest: %s", data)
		}
		vd := checkLegacy(data, sig, map[string]string{annotationRekorBundle: string(data), annotationCertificate: string(data)}, img, keys)
		if len(vd.authorities) > 0 {
			// Only the signed payload verifies, and it names the image.
			var m struct {
				Critical struct {
					Image struct {
						D string `json:"docker-manifest-digest"`
					} `json:"image"`
					Type string `json:"type"`
				} `json:"critical"`
			}
			if json.Unmarshal(data, &m) != nil || m.Critical.Image.D != goldenImage || m.Critical.Type != cosignSignatureType {
				t.Fatalf("verified a payload that does not name the image: %s", data)
			}
		}
	})
}

func FuzzBundle(f *testing.F) {
	seeds(f, "bundle-*.json")
	keys := goldenKeys(f)
	img, _ := parseDigest(goldenImage)
	f.Fuzz(func(t *testing.T, data []byte) {
		vd := checkBundle(data, img, keys)
		if len(vd.authorities) == 0 {
			if vd.kind == "" || vd.detail == "" {
				t.Fatalf("neither verified nor rejected: %+v", vd)
			}
			return
		}
		// Anything verified is a cosign signature statement about this image, read here
		// by a second, independent path.
		var b struct {
			Env struct {
				Payload     string `json:"payload"`
				PayloadType string `json:"payloadType"`
			} `json:"dsseEnvelope"`
		}
		if json.Unmarshal(data, &b) != nil || b.Env.PayloadType != payloadTypeInToto {
			t.Fatalf("verified a bundle that is not in-toto: %s", data)
		}
		payload, err := decodeBase64(b.Env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			PredicateType string `json:"predicateType"`
			Subject       []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
		}
		if json.Unmarshal(payload, &st) != nil || st.PredicateType != predicateTypeCosign {
			t.Fatalf("verified a statement that is not a signature: %s", payload)
		}
		for _, s := range st.Subject {
			if s.Digest["sha256"] == img.hex {
				return
			}
		}
		t.Fatalf("verified a statement about another image: %s", payload)
	})
}

func FuzzCheckJSONObject(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":2}],"c":{}}`))
	f.Add([]byte(`{"a":1,"A":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkJSONObject(data) != nil {
			return
		}
		var m map[string]any
		if !json.Valid(data) || json.Unmarshal(data, &m) != nil {
			t.Fatalf("accepted what is not one JSON object: %q", data)
		}
	})
}
