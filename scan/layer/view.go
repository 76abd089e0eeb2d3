package layer

import (
	"crypto/sha256"
	"hash"
)

// view is a set of paths of one layer, to be hidden by the layers above (see
// ImageSecrets).
type view map[string]*viewEntry

type viewEntry struct {
	layer int
	// hashes are the pathHash of the entry's path and of each of its
	// ancestors, computed once for the layers above.
	hashes []uint64
}

// hide removes from the view what layer l deletes, hides or replaces. It
// costs O(entries × depth): every lookup is by precomputed hash.
func (v view) hide(l *Result) {
	h := hidersOf(l)
	for p, e := range v {
		if h.hides(e.hashes) {
			delete(v, p)
		}
	}
}

// hiders are what one layer deletes, hides or replaces, by path hash.
type hiders struct {
	paths *PathSet
	// whiteouts delete a path and all beneath it; opaque hides what is beneath.
	whiteouts, opaque map[uint64]bool
	root              bool // a whiteout or opaque marker at "/": hides everything lower
}

func hidersOf(l *Result) hiders {
	h := hiders{paths: &l.Paths, whiteouts: make(map[uint64]bool, len(l.Whiteouts)), opaque: make(map[uint64]bool, len(l.OpaqueDirs))}
	for _, w := range l.Whiteouts {
		h.root = h.root || w == "/"
		h.whiteouts[pathHash(w)] = true
	}
	for _, d := range l.OpaqueDirs {
		h.root = h.root || d == "/"
		h.opaque[pathHash(d)] = true
	}
	return h
}

// hides reports whether the layer hides a lower entry whose path and
// ancestors have these hashes: an entry at the path, a whiteout of it or of
// an ancestor, an opaque ancestor, or a non-directory replacing an ancestor.
func (h hiders) hides(hashes []uint64) bool {
	if h.root || h.paths.hasHash(hashes[0]) || h.whiteouts[hashes[0]] {
		return true
	}
	for _, a := range hashes[1:] {
		if h.whiteouts[a] || h.opaque[a] || h.paths.hasNonDirHash(a) {
			return true
		}
	}
	return false
}

// ancestorHashes returns the pathHash of p and of each ancestor below the
// root: "/a/b/c" gives those of "/a/b/c", "/a/b" and "/a". It hashes p once,
// cloning the hash's state at each "/", so a deep path costs O(len(p)), not
// O(len(p) × depth).
func ancestorHashes(p string) []uint64 {
	var prefixes []uint64
	d := sha256.New()
	start := 0
	for i := 1; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		d.Write([]byte(p[start:i]))
		start = i
		prefixes = append(prefixes, sumPrefix(d))
	}
	d.Write([]byte(p[start:]))
	hashes := make([]uint64, 0, len(prefixes)+1)
	hashes = append(hashes, sumPrefix(d))
	for i := len(prefixes) - 1; i >= 0; i-- {
		hashes = append(hashes, prefixes[i])
	}
	return hashes
}

// sumPrefix returns the pathHash of what d has been written so far, leaving d
// as it is.
func sumPrefix(d hash.Hash) uint64 {
	var sum [sha256.Size]byte
	c, err := d.(hash.Cloner).Clone()
	if err != nil {
		panic(err) // sha256 clones without failing
	}
	c.Sum(sum[:0])
	return uint64(sum[0])<<56 | uint64(sum[1])<<48 | uint64(sum[2])<<40 | uint64(sum[3])<<32 |
		uint64(sum[4])<<24 | uint64(sum[5])<<16 | uint64(sum[6])<<8 | uint64(sum[7])
}
