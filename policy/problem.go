package policy

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a policy file.
type Problem struct {
	// Path locates the problem, e.g. "rules[2].enforceFrom"; it is empty
	// for problems with the document as a whole (such as YAML syntax).
	Path string `json:"path"`
	// Message says what is wrong, e.g. "not a date (want YYYY-MM-DD)".
	Message string `json:"message"`
	// Line is the 1-based line in the file, 0 when unknown.
	Line int `json:"line,omitempty"`
}

// String formats the problem as "path: message", or just the message when
// there is no path.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ValidationError is returned by Parse when a policy file is not valid. It
// lists every problem found, in file order.
type ValidationError struct {
	// Problems are all the problems found, sorted by line.
	Problems []Problem
}

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems while a file is read.
type problems struct {
	list []Problem
}

// add records a problem at path, located at node n when n is not nil.
func (ps *problems) add(path string, n *yaml.Node, format string, args ...any) {
	p := Problem{Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line = n.Line
	}
	ps.list = append(ps.list, p)
}

// err returns a *ValidationError holding the problems sorted by line
// (problems without a line first), or nil when there are none.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Line < ps.list[j].Line })
	return &ValidationError{Problems: ps.list}
}
