package inventory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime/debug"
	"strings"
)

// Build information as the Go linker lays it out: a 32-byte header starting
// with buildInfoMagic, then (since Go 1.18, flag buildInfoInline) the
// toolchain version and the module information as varint-prefixed strings;
// before, pointers to them, which only a reader of the executable's
// segments can follow.
var buildInfoMagic = []byte("\xff Go buildinf:")

const (
	buildInfoHeaderSize = 32
	buildInfoAlign      = 16
	buildInfoInline     = 0x2
	// maxGoVersion and maxModInfo bound the strings of one candidate, and
	// so the bytes held while waiting for them.
	maxGoVersion = 64 << 10
	maxModInfo   = 16 << 20
	// maxBuildInfoPending bounds the markers waiting for more bytes at once.
	maxBuildInfoPending = 4096
	// maxBuildInfoFound bounds the build informations kept from one file.
	maxBuildInfoFound = 64
	// maxBuildInfoParsed bounds the module information parsed from one file.
	maxBuildInfoParsed = 64 << 20
	// streamChunk is how much of a stream is read at a time.
	streamChunk = 1 << 20
)

// buildInfoScan finds build information by its marker, the way
// debug/buildinfo decodes it but without the executable's headers: at any
// offset (Go's reader wants the marker 16-byte aligned in the data segment's
// addresses, which a stream cannot know), in any number (a decoy before the
// real one, or binaries embedded in another, hide nothing), accepting every
// header Go's reader accepts (any pointer-size byte, any other flag bits, any
// non-empty version). A candidate counts when its module information parses
// as Go's does, or, without module information, when its version names a Go
// toolchain. Each byte is searched once and each candidate decoded a bounded
// number of times: the work is linear in the input.
type buildInfoScan struct {
	found   []*debug.BuildInfo
	parsed  int64
	limit   *LimitError
	pointer bool // an aligned pre-1.18 header, which cannot be followed here
	large   bool // a candidate with strings over the bounds
	// decodes and searched count the work done, for the tests that show
	// it is linear.
	decodes  int64
	searched int64
}

// scanBuildInfo reads r to its end and returns what it found.
func scanBuildInfo(r io.Reader) (*buildInfoScan, error) {
	s := &buildInfoScan{}
	buf := make([]byte, 0, 2*streamChunk)
	var base int64     // file offset of buf[0]
	var searched int64 // offsets before this were searched for the marker
	var pending []int64
	for {
		// Make room for a chunk: drop what no pending candidate and no
		// search needs if that frees at least half the buffer, else grow it
		// to twice the size, so that each byte is moved O(1) times.
		if cap(buf)-len(buf) < streamChunk {
			keep := searched - int64(len(buildInfoMagic)-1)
			if len(pending) > 0 {
				keep = min(keep, pending[0])
			}
			if drop := int(keep - base); drop > 0 && drop >= len(buf)/2 {
				buf = buf[:copy(buf, buf[drop:])]
				base = keep
			}
			if cap(buf)-len(buf) < streamChunk {
				grown := make([]byte, len(buf), 2*len(buf)+streamChunk)
				copy(grown, buf)
				buf = grown
			}
		}
		n, err := io.ReadFull(r, buf[len(buf):len(buf)+streamChunk])
		buf = buf[:len(buf)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return nil, err
		}
		pending = s.window(buf, base, &searched, pending, eof)
		if s.limit != nil || eof {
			return s, nil
		}
	}
}

// scanBuildInfoBytes is scanBuildInfo over data held in memory.
func scanBuildInfoBytes(data []byte) *buildInfoScan {
	s := &buildInfoScan{}
	var searched int64
	s.window(data, 0, &searched, nil, true)
	return s
}

// window searches buf (file offset base) for markers from *searched on,
// adds them to the pending ones (ascending offsets) and decodes those that
// buf now holds enough of; it returns the ones still waiting. At eof, none
// wait.
func (s *buildInfoScan) window(buf []byte, base int64, searched *int64, pending []int64, eof bool) []int64 {
	s.searched += base + int64(len(buf)) - *searched
	for {
		i := bytes.Index(buf[*searched-base:], buildInfoMagic)
		if i < 0 {
			break
		}
		off := *searched + int64(i)
		pending = append(pending, off)
		*searched = off + 1
	}
	if eof {
		*searched = base + int64(len(buf))
	} else {
		*searched = max(*searched, base+int64(len(buf)-(len(buildInfoMagic)-1)))
	}
	waiting := pending[:0]
	for _, off := range pending {
		if s.decode(buf[off-base:], off, eof) {
			waiting = append(waiting, off)
		}
		if s.limit != nil {
			return nil
		}
	}
	if len(waiting) > maxBuildInfoPending {
		s.limit = limitf("over %d Go build information markers waiting to be read", maxBuildInfoPending)
		return nil
	}
	return waiting
}

// decode decodes the candidate at the start of b (file offset off); it
// reports whether it needs more bytes than b holds.
func (s *buildInfoScan) decode(b []byte, off int64, eof bool) (short bool) {
	s.decodes++
	if len(b) < buildInfoHeaderSize {
		return !eof
	}
	if b[15]&buildInfoInline == 0 {
		if off%buildInfoAlign == 0 && (b[14] == 4 || b[14] == 8) {
			s.pointer = true
		}
		return false
	}
	rest := b[buildInfoHeaderSize:]
	vers, rest, st := varString(rest, maxGoVersion, eof)
	if st != infoOK {
		s.large = s.large || st == infoLarge
		return st == infoShort
	}
	mod, _, st := varString(rest, maxModInfo, eof)
	if st != infoOK {
		s.large = s.large || st == infoLarge
		return st == infoShort
	}
	s.accept(vers, mod)
	return false
}

// accept keeps a decoded candidate that Go's reader would accept and that
// names a Go toolchain or parses as module information.
func (s *buildInfoScan) accept(vers, mod []byte) {
	if len(vers) == 0 {
		return
	}
	// Strip the 16-byte sentinels around the module information.
	if len(mod) >= 33 && mod[len(mod)-17] == '\n' {
		mod = mod[16 : len(mod)-16]
	} else {
		mod = nil
	}
	if len(mod) == 0 && !bytes.HasPrefix(vers, []byte("go1")) && !bytes.HasPrefix(vers, []byte("devel ")) {
		return
	}
	s.parsed += int64(len(mod))
	if s.parsed > maxBuildInfoParsed {
		s.limit = limitf("over %d bytes of Go build information", maxBuildInfoParsed)
		return
	}
	bi, err := debug.ParseBuildInfo(string(mod))
	if err != nil {
		return // debug/buildinfo.Read fails on it too
	}
	if len(s.found) == maxBuildInfoFound {
		s.limit = limitf("over %d Go build informations in one file", maxBuildInfoFound)
		return
	}
	bi.GoVersion = string(vers)
	s.found = append(s.found, bi)
}

type infoStatus int

const (
	infoOK infoStatus = iota
	infoShort
	infoBad
	infoLarge
)

// varString decodes a varint length and that many bytes, as debug/buildinfo
// does; short means b ends first (bad at eof).
func varString(b []byte, maxLen uint64, eof bool) ([]byte, []byte, infoStatus) {
	n, k := binary.Uvarint(b)
	switch {
	case k == 0 && len(b) < binary.MaxVarintLen64:
		if eof {
			return nil, nil, infoBad
		}
		return nil, nil, infoShort
	case k <= 0:
		return nil, nil, infoBad
	case n > maxLen:
		return nil, nil, infoLarge
	case uint64(len(b)-k) < n:
		if eof {
			return nil, nil, infoBad
		}
		return nil, nil, infoShort
	}
	return b[k : k+int(n)], b[k+int(n):], infoOK
}

// packages returns the packages of every build information found, each once.
func (s *buildInfoScan) packages(p string, pkgs []Package) []Package {
	seen := map[Package]bool{}
	for _, pkg := range pkgs {
		seen[pkg] = true
	}
	for _, bi := range s.found {
		for _, pkg := range goPackages(p, bi) {
			if !seen[pkg] {
				seen[pkg] = true
				pkgs = append(pkgs, pkg)
			}
		}
	}
	return pkgs
}

// err returns the bound the scan hit, or, when it found nothing, the reason
// it may have missed build information: strings over its bounds, or (when
// streaming) the pre-1.18 layout.
func (s *buildInfoScan) err(streamed bool) error {
	switch {
	case s.limit != nil:
		return s.limit
	case len(s.found) > 0:
		return nil
	case s.large:
		return limitf("Go build information over %d bytes", maxModInfo)
	case s.pointer && streamed:
		return limitf("Go build information in the pre-1.18 layout, which is not read from a file over the in-memory size")
	}
	return nil
}

// ExtractStream finds the build information in an executable read as a
// stream, for files too large to read into memory. It reads build
// information as Go 1.18 and later lay it out; an executable carrying only
// the older layout is a *LimitError.
func (GoBinary) ExtractStream(p string, r io.Reader) ([]Package, error) {
	s, err := scanBuildInfo(r)
	if err != nil {
		return nil, err
	}
	return s.packages(p, nil), s.err(true)
}

// goToolchainVersion turns "go1.22.5 X:boringcrypto" into "1.22.5".
func goToolchainVersion(v string) string {
	v, _, _ = strings.Cut(v, " ")
	return strings.TrimPrefix(v, "go")
}
