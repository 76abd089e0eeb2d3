package policy

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the work spent walking a document, so that a file built
// from nested aliases cannot make Parse run for ever.
const maxNodes = 100000

// reader walks a YAML node tree, recording problems with their paths.
type reader struct {
	problems
	visited  int
	tooLarge bool
	// readFile reads key files (ParseOptions.ReadFile); nil: none can be read.
	readFile func(name string) ([]byte, error)
	// glob expands exceptionFiles patterns (ParseOptions.Glob); nil: none
	// can be expanded.
	glob func(pattern string) ([]string, error)
	// keyFiles are the key files and exception files read, in the order
	// read, for the Revision.
	keyFiles []keyFileRead
	// files counts the exception files read.
	files int
	// document names the kind of file read, for messages; "" is "policy".
	document string
}

// noun is the kind of file read ("policy", or "mirror" for ReadAuthorities' callers).
func (r *reader) noun() string {
	if r.document == "" {
		return "policy"
	}
	return r.document
}

// field is one key of a YAML mapping.
type field struct {
	key   string
	path  string
	keyN  *yaml.Node
	value *yaml.Node
}

// resolve follows aliases and charges the walk budget. It returns nil once
// the budget is spent.
func (r *reader) resolve(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 100 {
			return nil
		}
		n = n.Alias
	}
	r.visited++
	if r.visited > maxNodes {
		if !r.tooLarge {
			r.tooLarge = true
			r.add("", nil, "document too large or too deeply aliased (more than %d nodes)", maxNodes)
		}
		return nil
	}
	return n
}

// isNull reports whether n is absent or an explicit YAML null.
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// kindName names a node kind for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// join appends a key to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping returns the fields of the mapping n in document order, reporting
// a non-mapping, non-string keys, merge keys and duplicate keys. ok is false
// when n is not a mapping.
func (r *reader) mapping(path string, n *yaml.Node) (fields []field, ok bool) {
	n = r.resolve(n)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		r.add(path, n, "want a mapping, got %s", kindName(n))
		return nil, false
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := r.resolve(n.Content[i])
		if k == nil {
			return fields, true
		}
		if k.Kind != yaml.ScalarNode {
			r.add(path, k, "mapping keys must be plain names, got %s", kindName(k))
			continue
		}
		fp := join(path, k.Value)
		if k.ShortTag() == "!!merge" {
			r.add(fp, k, "merge keys (<<) are not supported")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			r.add(fp, k, "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		fields = append(fields, field{key: k.Value, path: fp, keyN: k, value: n.Content[i+1]})
	}
	return fields, true
}

// unknown reports a field that is not part of the schema.
func (r *reader) unknown(f field) {
	r.add(f.path, f.keyN, "unknown field (line %d)", f.keyN.Line)
}

// list returns the items of the sequence n; a null counts as empty.
func (r *reader) list(path string, n *yaml.Node) []*yaml.Node {
	n = r.resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		r.add(path, n, "want a list, got %s", kindName(n))
		return nil
	}
	return n.Content
}

// str reads a scalar as text; a null is absent (ok false, no problem).
func (r *reader) str(path string, n *yaml.Node) (s string, ok bool) {
	n = r.resolve(n)
	if isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		r.add(path, n, "want a string, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// enum reads a string that must be one of names, reporting any other value with the
// choices ("a or b", "a, b, c"); it returns the string whatever it is.
func (r *reader) enum(path string, n *yaml.Node, names []string) (string, bool) {
	s, ok := r.str(path, n)
	if ok && !oneOf(s, names) {
		sep := ", "
		if len(names) == 2 {
			sep = " or "
		}
		r.add(path, n, "unknown value %q (want %s)", s, strings.Join(names, sep))
	}
	return s, ok
}

// item is one string of a list, with its path and node.
type item struct {
	value string
	path  string
	node  *yaml.Node
}

// strList reads a list of strings; nulls and non-strings are reported.
func (r *reader) strList(path string, n *yaml.Node) []item {
	var out []item
	for i, c := range r.list(path, n) {
		p := fmt.Sprintf("%s[%d]", path, i)
		c = r.resolve(c)
		if c == nil {
			break
		}
		if c.Kind != yaml.ScalarNode || isNull(c) {
			r.add(p, c, "want a string, got %s", kindName(c))
			continue
		}
		out = append(out, item{value: c.Value, path: p, node: c})
	}
	return out
}

// boolean reads true or false.
func (r *reader) boolean(path string, n *yaml.Node) bool {
	n = r.resolve(n)
	if isNull(n) {
		return false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	}
	r.add(path, n, "want true or false, got %s", kindName(n))
	return false
}

// integer reads a whole number; ok is false when n is absent or not one
// (the latter is reported).
func (r *reader) integer(path string, n *yaml.Node) (i int, ok bool) {
	n = r.resolve(n)
	if isNull(n) {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		if err := n.Decode(&i); err == nil {
			return i, true
		}
	}
	r.add(path, n, "want a whole number, got %s", kindName(n))
	return 0, false
}

// date reads a YYYY-MM-DD date as midnight UTC; absent gives the zero time.
func (r *reader) date(path string, n *yaml.Node) time.Time {
	s, ok := r.str(path, n)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(dateLayout, strings.TrimSpace(s))
	if err != nil {
		r.add(path, n, "not a date (want YYYY-MM-DD), got %q", s)
		return time.Time{}
	}
	return t
}

// oneOf reports whether s is in allowed.
func oneOf(s string, allowed []string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

// notEmpty reports a selector list given with no items, which would
// otherwise silently mean "any".
func (r *reader) notEmpty(f field) {
	n := r.resolve(f.value)
	if isNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		r.add(f.path, f.value, "empty list: give at least one item or remove the field")
	}
}
