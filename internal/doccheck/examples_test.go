package doccheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/mirror"
	"github.com/portcullis-dev/portcullis/policy"
)

// checkMirror parses a mirror file as `portcullis mirror collect` reads it, with a
// generated public key at every keyFile path its publisher authorities name.
func checkMirror(t *testing.T, b block) error {
	path := writePolicyDir(t, []byte(b.body))
	_, err := mirror.ParseFileWith(strings.NewReader(b.body), mirror.ParseOptions{ReadFile: gate.FileOptions(path).ReadFile})
	return err
}

// yamlKinds says what each kind of ```yaml block is and how it is checked. A yaml block
// must name its kind in the info string (```yaml policy), so that nothing is skipped
// because it looked like something else.
var yamlKinds = map[string]func(t *testing.T, b block) error{
	"policy":      checkPolicy,     // a whole policy file, as `portcullis policy lint` reads it
	"policy-part": checkPolicyPart, // top-level keys of a policy, merged into the base policy
	"rules":       checkRules,      // items of `rules:`, added to the base policy
	"exceptions":  checkExceptions, // an exception file (a list), read through the base policy
	"config":      checkConfig,     // a whole gateway config file: config.Load, then Validate
	"kubernetes":  checkKubernetes, // Kubernetes manifests: each document has apiVersion and kind
	"mirror":      checkMirror,     // a whole mirror file, as `portcullis mirror collect` reads it
	"fragment":    checkFragment,   // not a whole file: YAML syntax only
}

// checked counts the examples checked per kind, so that a test that checks nothing fails.
type checked map[string]int

func TestExamples(t *testing.T) {
	counts := checked{}
	for _, p := range pages(t) {
		for _, b := range p.blocks(t, nil) {
			switch b.lang {
			case "yaml", "yml":
				check, ok := yamlKinds[b.kind]
				if !ok {
					t.Errorf("%s: ```%s block without a known kind %q: write ```yaml KIND, KIND one of %s",
						b, b.lang, b.kind, kindList())
					continue
				}
				if err := check(t, b); err != nil {
					t.Errorf("%s: %s example does not parse:\n%v\n--- example ---\n%s", b, b.kind, err, b.body)
				}
				counts["yaml "+b.kind]++
			case "json":
				if b.kind == "fragment" {
					counts["json fragment"]++
					continue
				}
				if !json.Valid([]byte(b.body)) {
					var v any
					err := json.Unmarshal([]byte(b.body), &v)
					t.Errorf("%s: json example is not valid JSON (mark it ```json fragment if it is not meant to be): %v", b, err)
				}
				counts["json"]++
			}
		}
	}
	for _, want := range []string{"yaml policy", "yaml rules", "yaml policy-part", "yaml exceptions", "yaml config", "yaml mirror"} {
		if counts[want] == 0 {
			t.Errorf("no %s example was checked: has the documentation lost them, or the test its way?", want)
		}
	}
	t.Logf("examples checked: %v", map[string]int(counts))
}

func kindList() string {
	var ks []string
	for k := range yamlKinds {
		ks = append(ks, k)
	}
	return strings.Join(sortedStrings(ks), ", ")
}

var keyFileRE = regexp.MustCompile(`(?m)keyFile:\s*["']?([^\s"'#}]+)`)

// trustedRootRE finds the trustedRoot files of keyless authorities.
var trustedRootRE = regexp.MustCompile(`(?m)trustedRoot:\s*["']?([^\s"'#},]+)`)

// writePolicyDir writes data as policy.yaml in a new directory, with a distinct freshly
// generated public key at every keyFile path the text names (as a team commits cosign.pub
// next to its policy) and a generated sigstore trusted_root.json at every trustedRoot
// path, and returns the policy file's path.
func writePolicyDir(t *testing.T, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range keyFileRE.FindAllSubmatch(data, -1) {
		name := string(m[1])
		if filepath.IsAbs(name) || strings.Contains(name, "..") {
			t.Fatalf("example names key file %q outside the policy's directory", name)
		}
		writeFile(t, filepath.Join(dir, name), publicKeyPEM(t))
	}
	for _, m := range trustedRootRE.FindAllSubmatch(data, -1) {
		name := string(m[1])
		if filepath.IsAbs(name) || strings.Contains(name, "..") {
			t.Fatalf("example names trusted root %q outside the policy's directory", name)
		}
		writeFile(t, filepath.Join(dir, name), cosigntest.NewSigstore(t).TrustedRoot(t))
	}
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, data)
	return path
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func publicKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// lintPolicy parses the policy file at path exactly as `portcullis policy lint` does.
func lintPolicy(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = policy.ParseWith(data, gate.FileOptions(path))
	return err
}

func checkPolicy(t *testing.T, b block) error {
	return lintPolicy(writePolicyDir(t, []byte(b.body)))
}

func checkConfig(t *testing.T, b block) error {
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	writeFile(t, path, []byte(b.body))
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	return cfg.Validate()
}

func checkFragment(_ *testing.T, b block) error {
	var v any
	return yaml.Unmarshal([]byte(b.body), &v)
}

func checkKubernetes(_ *testing.T, b block) error {
	dec := yaml.NewDecoder(strings.NewReader(b.body))
	for n := 0; ; n++ {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" && n > 0 {
				return nil
			}
			return err
		}
		if doc["apiVersion"] == nil || doc["kind"] == nil {
			return fmt.Errorf("document %d has no apiVersion or kind", n+1)
		}
	}
}

// TestDeployExampleConfig loads the complete example configuration the documentation
// points at, as `portcullis serve --config` would before starting.
func TestDeployExampleConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(root, "deploy", "examples", "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("deploy/examples/portcullis.yaml does not validate:\n%v", err)
	}
}
