package layer

import (
	"fmt"
	"path"
	"slices"
)

// linkedDatabase is a package database a consumer reads through symlinks:
// the entry it leads to and the path it is read at, or why it could not be
// analysed.
type linkedDatabase struct {
	entry  *stackEntry
	at     string
	reason string
}

// linkedDatabases follows the package databases' paths through symlinks, as
// dpkg and apk open them. Where a path leads through a symlink to a file the
// analysis read as that database (File.As, or the database at its own path
// elsewhere) it returns that file; where it leads to a file a layer has but
// that was not read as one, a reason.
func (s *stack) linkedDatabases() []linkedDatabase {
	var out []linkedDatabase
	for _, c := range []string{dpkgStatus, apkInstalled, apkInstalled2} {
		if e := s.top[c]; e != nil && e.link == nil {
			continue // read at its own path (a layer may write through a symlinked directory)
		}
		real, followed, ok := s.resolve(c)
		switch {
		case !ok:
			out = append(out, linkedDatabase{reason: fmt.Sprintf("%s: too many levels of symbolic links, or a path too long", c)})
		case !followed:
		default:
			if r, found := s.linkedFile(c, real); found {
				out = append(out, r)
			}
		}
	}
	real, followed, ok := s.resolve(dpkgStatusDir)
	switch {
	case !ok:
		out = append(out, linkedDatabase{reason: fmt.Sprintf("%s: too many levels of symbolic links, or a path too long", dpkgStatusDir)})
	case followed && path.Base(real) != "status.d":
		// Files in it were not read as status.d files, and the path sets
		// cannot tell an empty directory (a layer need not list it).
		out = append(out, linkedDatabase{reason: fmt.Sprintf("%s leads through symbolic links to %s, which was not read", dpkgStatusDir, real)})
	case followed:
		var found []linkedDatabase
		for p, e := range s.top {
			if path.Dir(p) == real && e.file != nil && e.file.As != "" && consumerKind(e.file.As) == consumerKind(dpkgStatusDir+"/x") {
				found = append(found, s.linkedEntry(dpkgStatusDir+"/"+path.Base(p), e))
			}
		}
		slices.SortFunc(found, func(a, b linkedDatabase) int { return cmpString(a.at, b.at) })
		out = append(out, found...)
	}
	return out
}

// linkedFile returns the database read at c that resolves to real.
func (s *stack) linkedFile(c, real string) (linkedDatabase, bool) {
	e := s.top[real]
	switch {
	case e != nil && e.file != nil && consumerKind(real) == consumerKind(c):
		return linkedDatabase{}, false // counted at its own path already
	case e != nil && e.file != nil && e.file.As != "" && consumerKind(e.file.As) == consumerKind(c):
		return s.linkedEntry(c, e), true
	case e != nil && e.link != nil:
		return linkedDatabase{reason: fmt.Sprintf("%s leads through symbolic links to %s, which was not read", c, real)}, true
	case e != nil || s.anyLayerHas(real):
		return linkedDatabase{reason: fmt.Sprintf("%s leads through symbolic links to %s, which was not read as a package database", c, real)}, true
	}
	return linkedDatabase{}, false // leads nowhere: the consumer finds no database
}

func (s *stack) linkedEntry(at string, e *stackEntry) linkedDatabase {
	if e.file.Error != "" {
		return linkedDatabase{reason: fmt.Sprintf("%s leads to %s, which could not be parsed: %s", at, e.path, e.file.Error)}
	}
	return linkedDatabase{entry: e, at: at}
}

// anyLayerHas reports whether a layer has an entry at p.
func (s *stack) anyLayerHas(p string) bool {
	return slices.ContainsFunc(s.layers, func(l Result) bool { return l.Paths.Has(p) })
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
