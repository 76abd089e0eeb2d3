package doccheck

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// basePolicy is what policy-part, rules and exceptions examples are read within: the
// built-in starter policy (policy/builtin/starter.yaml, the default a reader starts from)
// plus the two authorities the reference's examples name, release and security, each with
// a freshly generated key.
func basePolicy(t *testing.T) *yaml.Node {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "policy", "builtin", "starter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data = fmt.Appendf(data, "\nauthorities:\n  - name: release\n    key: %q\n  - name: security\n    key: %q\n",
		publicKeyPEM(t), publicKeyPEM(t))
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// merge adds the example's top-level keys to the base policy (both mapping nodes, so that
// scalars such as dates keep their text): a list is merged item by item (an item with the
// id or name of a base item replaces it, others are appended), any other value replaces
// the base's.
func merge(base, part *yaml.Node) {
	for i := 0; i+1 < len(part.Content); i += 2 {
		key, val := part.Content[i], part.Content[i+1]
		bv := valueOf(base, key.Value)
		switch {
		case bv == nil:
			base.Content = append(base.Content, key, val)
		case bv.Kind == yaml.SequenceNode && val.Kind == yaml.SequenceNode:
			for _, it := range val.Content {
				if j := indexOf(bv.Content, keyOf(it)); j >= 0 {
					bv.Content[j] = it
				} else {
					bv.Content = append(bv.Content, it)
				}
			}
		default:
			*bv = *val
		}
	}
}

// valueOf is the value of key in mapping m, or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// keyOf identifies a list item by its id or name.
func keyOf(item *yaml.Node) string {
	if item.Kind != yaml.MappingNode {
		return ""
	}
	for _, k := range []string{"id", "name"} {
		if v := valueOf(item, k); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
			return k + "=" + v.Value
		}
	}
	return ""
}

func indexOf(items []*yaml.Node, key string) int {
	if key == "" {
		return -1
	}
	for i, it := range items {
		if keyOf(it) == key {
			return i
		}
	}
	return -1
}

// decodeNode decodes an example that must be one YAML document of the given kind.
func decodeNode(body string, kind yaml.Kind, what string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(body), &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != kind || len(doc.Content[0].Content) == 0 {
		return nil, fmt.Errorf("the example must be %s", what)
	}
	return doc.Content[0], nil
}

// lintMerged writes the base policy with part merged into it and lints it; extra files
// (relative to the policy's directory) are written next to it.
func lintMerged(t *testing.T, part *yaml.Node, extra map[string][]byte) error {
	t.Helper()
	p := basePolicy(t)
	merge(p, part)
	data, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	path := writePolicyDir(t, data)
	for name, content := range extra {
		writeFile(t, filepath.Join(filepath.Dir(path), name), content)
	}
	return lintPolicy(path)
}

func checkPolicyPart(t *testing.T, b block) error {
	part, err := decodeNode(b.body, yaml.MappingNode, "a mapping of top-level policy keys")
	if err != nil {
		return err
	}
	if valueOf(part, "version") != nil {
		return fmt.Errorf("this example has version: it is a whole policy; mark it ```yaml policy")
	}
	return lintMerged(t, part, nil)
}

// mapping builds a mapping node of one key.
func mapping(key string, val *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: key}, val}}
}

func checkRules(t *testing.T, b block) error {
	rules, err := decodeNode(b.body, yaml.SequenceNode, "a list of rules")
	if err != nil {
		return err
	}
	return lintMerged(t, mapping("rules", rules), nil)
}

func checkExceptions(t *testing.T, b block) error {
	if _, err := decodeNode(b.body, yaml.SequenceNode, "a list of exceptions (an exception file)"); err != nil {
		return err
	}
	files := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "exceptions/example.yaml"}}}
	return lintMerged(t, mapping("exceptionFiles", files), map[string][]byte{"exceptions/example.yaml": []byte(b.body)})
}
