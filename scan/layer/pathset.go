package layer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
)

// PathSet is the set of a layer's entry paths, directories apart from the
// rest. It keeps a 64-bit prefix of each path's SHA-256 rather than the path,
// so a layer of a million entries costs 8 MB, not a hundred; finding a path
// that collides with a chosen one takes about 2^64 hashes.
type PathSet struct {
	dirs, nonDirs []uint64
}

func pathHash(p string) uint64 {
	sum := sha256.Sum256([]byte(p))
	return binary.BigEndian.Uint64(sum[:8])
}

func (s *PathSet) add(p string, dir bool) {
	if dir {
		s.dirs = append(s.dirs, pathHash(p))
	} else {
		s.nonDirs = append(s.nonDirs, pathHash(p))
	}
}

// seal sorts the set for lookups.
func (s *PathSet) seal() {
	slices.Sort(s.dirs)
	s.dirs = slices.Compact(s.dirs)
	slices.Sort(s.nonDirs)
	s.nonDirs = slices.Compact(s.nonDirs)
}

// Len returns the number of distinct paths (a path that is both a directory
// and a file in one layer counts twice).
func (s PathSet) Len() int { return len(s.dirs) + len(s.nonDirs) }

// Has reports whether the layer has an entry of any type at p.
func (s PathSet) Has(p string) bool { return s.hasHash(pathHash(p)) }

// HasNonDir reports whether the layer has an entry at p that is not a directory.
func (s PathSet) HasNonDir(p string) bool { return s.hasNonDirHash(pathHash(p)) }

func (s PathSet) hasHash(h uint64) bool {
	_, ok := slices.BinarySearch(s.dirs, h)
	return ok || s.hasNonDirHash(h)
}

func (s PathSet) hasNonDirHash(h uint64) bool {
	_, ok := slices.BinarySearch(s.nonDirs, h)
	return ok
}

type pathSetJSON struct {
	Dirs    string `json:"dirs"`
	NonDirs string `json:"nonDirs"`
}

// MarshalJSON encodes the set compactly, as base64 of the sorted hashes.
func (s PathSet) MarshalJSON() ([]byte, error) {
	return json.Marshal(pathSetJSON{Dirs: encodeHashes(s.dirs), NonDirs: encodeHashes(s.nonDirs)})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (s *PathSet) UnmarshalJSON(b []byte) error {
	var j pathSetJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var err error
	if s.dirs, err = decodeHashes(j.Dirs); err != nil {
		return fmt.Errorf("dirs: %w", err)
	}
	if s.nonDirs, err = decodeHashes(j.NonDirs); err != nil {
		return fmt.Errorf("nonDirs: %w", err)
	}
	s.seal()
	return nil
}

func encodeHashes(h []uint64) string {
	b := make([]byte, 0, 8*len(h))
	for _, v := range h {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func decodeHashes(s string) ([]uint64, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of hashes", len(b))
	}
	h := make([]uint64, len(b)/8)
	for i := range h {
		h[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return h, nil
}
