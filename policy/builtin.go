package policy

import (
	"embed"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// BuiltinDefault is the name of the built-in policy used when no policy file
// is configured.
const BuiltinDefault = "starter"

// builtinSources maps each built-in name to a function producing its YAML.
var builtinSources = map[string]func() ([]byte, error){
	"starter": func() ([]byte, error) { return builtinFS.ReadFile("builtin/starter.yaml") },
	"observe": observeSource,
}

// BuiltinNames returns the names of the built-in policies, sorted.
func BuiltinNames() []string {
	names := make([]string, 0, len(builtinSources))
	for n := range builtinSources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin returns a built-in policy: "starter" (the default: no latest, no
// moved tags, and the scanning and signature rules staged per environment)
// or "observe" (the same rules, all in mode observe).
func Builtin(name string) (*Policy, error) {
	src, ok := builtinSources[name]
	if !ok {
		return nil, fmt.Errorf("no built-in policy named %q (want %s)", name, strings.Join(BuiltinNames(), " or "))
	}
	data, err := src()
	if err != nil {
		return nil, fmt.Errorf("reading built-in policy %s: %w", name, err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("built-in policy %s: %w", name, err)
	}
	return p, nil
}

// observeSource derives the observe policy from starter: every rule's mode
// becomes observe and its dates are dropped.
func observeSource() ([]byte, error) {
	data, err := builtinFS.ReadFile("builtin/starter.yaml")
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	doc.HeadComment, root.HeadComment = "", ""
	if len(root.Content) > 0 {
		root.Content[0].HeadComment = ""
	}
	doc.HeadComment = "portcullis observe policy: the starter rules, all in mode observe, so that\n" +
		"every request is allowed and every failure is only recorded. Generated from starter."
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "rules" {
			continue
		}
		for _, r := range root.Content[i+1].Content {
			setObserve(r)
		}
	}
	return yaml.Marshal(&doc)
}

// setObserve sets mode: observe on a rule mapping and removes its dates.
func setObserve(r *yaml.Node) {
	var kept []*yaml.Node
	for i := 0; i+1 < len(r.Content); i += 2 {
		k, v := r.Content[i], r.Content[i+1]
		switch k.Value {
		case "enforceFrom", "observeUntil":
			continue
		case "mode":
			v.SetString(string(ModeObserve))
			v.LineComment = ""
		}
		kept = append(kept, k, v)
	}
	r.Content = kept
}
