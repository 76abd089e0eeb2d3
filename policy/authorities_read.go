package policy

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// ReadAuthorities reads a list of authorities written exactly as a policy's
// authorities section (name, key or keyFile, signCommand) from a file that
// is not a policy, such as a mirror file's publisher authorities, with the
// same checks: names, PEM keys of an accepted type and size, one of key or
// keyFile, no name or key listed twice. path is the list's field path in
// that file (e.g. "sources[0].authorities"), which every problem's path
// starts with; document names the kind of file for messages ("mirror").
// opts.ReadFile reads keyFile names (relative to that file, as the caller
// decides); opts.Glob is not used. A null node is an empty list. On any
// problem it returns a *ValidationError listing every one, by line.
func ReadAuthorities(path, document string, n *yaml.Node, opts ParseOptions) ([]Authority, error) {
	r := &reader{readFile: opts.ReadFile, document: document}
	var as []authority
	for i, item := range r.list(path, n) {
		if a, ok := r.readAuthority(fmt.Sprintf("%s[%d]", path, i), item); ok {
			as = append(as, a)
		}
	}
	r.distinctAuthorities(as)
	dropAuthorityNodes(as)
	if err := r.err(); err != nil {
		return nil, err
	}
	out := make([]Authority, len(as))
	for i, a := range as {
		out[i] = a.Authority
	}
	return out, nil
}
