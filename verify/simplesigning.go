package verify

import (
	"encoding/json"
	"errors"
)

// cosignSignatureType is critical.type of a cosign simple-signing payload.
const cosignSignatureType = "cosign container image signature"

// simpleSigning is the simple-signing payload cosign signs in the legacy format:
// {"critical":{"identity":{"docker-reference":...},"image":{"docker-manifest-digest":...},
// "type":"cosign container image signature"},"optional":{...}}.
type simpleSigning struct {
	Critical *struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// parseSimpleSigning parses a simple-signing payload. It checks the shape only: the type
// and digest are the caller's to judge.
func parseSimpleSigning(payload []byte) (simpleSigning, error) {
	if err := checkJSONObject(payload); err != nil {
		return simpleSigning{}, err
	}
	var p simpleSigning
	if err := json.Unmarshal(payload, &p); err != nil {
		return simpleSigning{}, err
	}
	switch {
	case p.Critical == nil:
		return simpleSigning{}, errors.New("no critical section")
	case p.Critical.Image.DockerManifestDigest == "":
		return simpleSigning{}, errors.New("no critical.image.docker-manifest-digest")
	}
	return p, nil
}

// verdict is the outcome of checking one signature: the authorities it verified with,
// or why it did not count.
type verdict struct {
	authorities []string
	kind        Kind
	detail      string
}

// reject makes a verdict that does not count.
func reject(kind Kind, detail string) verdict { return verdict{kind: kind, detail: detail} }

// checkLegacy judges one legacy signature: sig over payload, with the layer's
// annotations for key claims, for the image img.
func checkLegacy(payload, sig []byte, annotations map[string]string, img digest, keys []trustedKey) verdict {
	p, err := parseSimpleSigning(payload)
	if err != nil {
		return reject(KindMalformed, "payload is not a simple-signing payload: "+err.Error())
	}
	if p.Critical.Type != cosignSignatureType {
		return reject(KindWrongPayloadType, "critical.type is "+quote(p.Critical.Type)+", not "+quote(cosignSignatureType))
	}
	var names []string
	if name := firstSigner(keys, sig, payload); name != "" {
		names = []string{name}
	} else if hasKeyless(keys) {
		e, isKeyless, err := newLegacyEntity(payload, sig, annotations)
		switch {
		case err != nil:
			return reject(KindMalformed, err.Error())
		case isKeyless:
			if out, ok := checkKeyless(e, payload, keys); ok {
				if len(out.names) == 0 {
					return reject(out.kind, out.detail)
				}
				names = out.names
			}
		}
	}
	if len(names) == 0 {
		kind, detail := legacyClaims(annotations).classify(keys)
		return reject(kind, detail)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != img.String() {
		return reject(KindOtherDigest, "signed by "+quote(names[0])+" for "+quote(got)+", not this image: a signature copied from another image")
	}
	return verdict{authorities: names}
}
