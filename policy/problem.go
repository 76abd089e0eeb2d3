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
	// File is, for a problem inside an exception file, that file's name as
	// exceptionFiles matched it (Line is then a line of that file); "" for
	// the policy file itself.
	File string `json:"file,omitempty"`
	// order is 0 for the policy file and the 1-based read order of an
	// exception file, so that problems sort file by file.
	order int
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
	// Problems are all the problems found: those of the policy file sorted
	// by line, then those of each exception file, in the order the files
	// were read, sorted by line.
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
	// file and order locate the problems added now: "" and 0 while the
	// policy file is read, an exception file's name and read order while
	// that file is.
	file  string
	order int
}

// add records a problem at path, located at node n when n is not nil.
func (ps *problems) add(path string, n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	ps.addLine(path, line, format, args...)
}

// addLine records a problem at path on a known line (0: unknown).
func (ps *problems) addLine(path string, line int, format string, args ...any) {
	ps.list = append(ps.list, Problem{Path: path, Message: fmt.Sprintf(format, args...), Line: line, File: ps.file, order: ps.order})
}

// err returns a *ValidationError holding the problems sorted by file and
// then by line (problems without a line first), or nil when there are none.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool {
		a, b := ps.list[i], ps.list[j]
		if a.order != b.order {
			return a.order < b.order
		}
		return a.Line < b.Line
	})
	return &ValidationError{Problems: ps.list}
}
