package mirror

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/policy"
)

// Authorities are publisher signing keys in a mirror file, written exactly as a policy's
// authorities section (docs/SIGNING.md): a list of name, key (an inline PEM public key) or
// keyFile (relative to the mirror file), and an optional signCommand.
type Authorities struct {
	// List are the authorities, read and checked by the policy package.
	List []policy.Authority
	// node is the YAML list as written, read by ParseFileWith.
	node *yaml.Node
}

// UnmarshalYAML keeps the list's node; ParseFileWith reads it with the policy's reader,
// which can read key files and reports problems with their field paths.
func (a *Authorities) UnmarshalYAML(n *yaml.Node) error {
	a.node = n
	return nil
}

// Given says whether the field is present with a value (an empty list counts).
func (a Authorities) Given() bool {
	return len(a.List) > 0 || (a.node != nil && !(a.node.Kind == yaml.ScalarNode && a.node.ShortTag() == "!!null"))
}

// Names are the authorities' names, in file order.
func (a Authorities) Names() []string {
	out := make([]string, len(a.List))
	for i, x := range a.List {
		out[i] = x.Name
	}
	return out
}

// readAuthorities reads every authorities list of f from its YAML node.
func (f *File) readAuthorities(p *problems, o ParseOptions) {
	read := func(path string, a *Authorities) {
		if a.node == nil {
			return
		}
		list, err := policy.ReadAuthorities(path, "mirror", a.node, policy.ParseOptions{ReadFile: o.ReadFile})
		var ve *policy.ValidationError
		switch {
		case errors.As(err, &ve):
			for _, x := range ve.Problems {
				p.add(x.Path, "%s", x.Message)
			}
		case err != nil:
			p.add(path, "%v", err)
		default:
			a.List = list
		}
	}
	for i := range f.Sources {
		s := &f.Sources[i]
		read(fmt.Sprintf("sources[%d].authorities", i), &s.Authorities)
		for j := range s.Repositories {
			read(fmt.Sprintf("sources[%d].repositories[%d].authorities", i, j), &s.Repositories[j].Authorities)
		}
	}
}

// validateAuthorities reports an empty list and, for authorities set by a program rather
// than read from YAML, a missing name or key.
func validateAuthorities(p *problems, path string, a Authorities, empty string) {
	if a.Given() && len(a.List) == 0 && a.node != nil && a.node.Kind == yaml.SequenceNode && len(a.node.Content) == 0 {
		p.add(path, "%s", empty)
	}
	names := map[string]int{}
	for i, x := range a.List {
		ap := fmt.Sprintf("%s[%d]", path, i)
		if x.Name == "" {
			p.add(ap+".name", "required")
		} else if first, dup := names[x.Name]; dup {
			p.add(ap+".name", "duplicate of %s[%d].name", path, first)
		} else {
			names[x.Name] = i
		}
		if x.PublicKey == nil && x.Keyless == nil {
			p.add(ap, "needs key (an inline PEM public key), keyFile, or keyless (a certificate identity)")
		}
	}
}

// PublisherAuthorities are the authorities the images of r in source s must be signed
// by: r's own when it gives them, else s's; none means no publisher verification.
func PublisherAuthorities(s Source, r Repository) []policy.Authority {
	if len(r.Authorities.List) > 0 {
		return r.Authorities.List
	}
	return s.Authorities.List
}
