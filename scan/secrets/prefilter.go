package secrets

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"
)

// A prefilter decides which detectors of a set to run on a text: those
// without hints, and those with a hint that occurs in the text (an exact,
// case-sensitive substring). Searching for each hint separately read a file
// once per hint, 17 times for the text detectors, and cost four times as
// much as all the detectors together. A prefilter reads the text once for
// all of them.
//
// Each hint is anchored at one of its byte pairs (bigrams), chosen to be rare
// in ordinary text. The scan looks every bigram of the text up in a table of
// anchors; only at an anchor does it compare the hints anchored there with
// the text around it. Every occurrence of a hint puts its anchor bigram in the
// text, so no occurrence is missed, and a detector is selected only when one
// of its hints is really there: the selection is exactly that of searching
// for each hint on its own.
type prefilter struct {
	dets []detector
	// always has the bits of the detectors without hints; all those of every
	// detector.
	always, all uint64
	// anchor maps a bigram (first byte in the low 8 bits) to 1 + the index
	// of its bucket, 0 for none.
	anchor *[1 << 16]uint8
	// buckets holds, per anchor bigram, the hints anchored on it.
	buckets [][]anchoredHint
	// single is the only hint of the set, if it has one: then
	// strings.Contains, which the runtime vectorises, is faster than a scan.
	single *anchoredHint
}

// anchoredHint is a hint whose anchor bigram starts offset bytes into it;
// dets has the bits of the detectors it selects.
type anchoredHint struct {
	hint   string
	offset int
	dets   uint64
}

// newPrefilter builds the prefilter for dets, at most 64 detectors whose
// hints are at least 2 bytes long.
func newPrefilter(dets ...detector) *prefilter {
	if len(dets) > 64 {
		panic("secrets: more than 64 detectors in one set")
	}
	pf := &prefilter{dets: dets, anchor: new([1 << 16]uint8)}
	var hints []anchoredHint
	for i, d := range dets {
		bit := uint64(1) << i
		pf.all |= bit
		if len(d.hints) == 0 {
			pf.always |= bit
			continue
		}
	next:
		for _, h := range d.hints {
			if len(h) < 2 {
				panic(fmt.Sprintf("secrets: hint %q of %s is shorter than 2 bytes", h, d.typ))
			}
			for j := range hints {
				if hints[j].hint == h {
					hints[j].dets |= bit
					continue next
				}
			}
			hints = append(hints, anchoredHint{hint: h, offset: rarestBigram(h), dets: bit})
		}
	}
	if len(hints) == 1 {
		pf.single = &hints[0]
		return pf
	}
	for _, h := range hints {
		bg := bigram(h.hint[h.offset], h.hint[h.offset+1])
		if pf.anchor[bg] == 0 {
			if len(pf.buckets) == 255 {
				panic("secrets: more than 255 hint anchors")
			}
			pf.buckets = append(pf.buckets, nil)
			pf.anchor[bg] = uint8(len(pf.buckets))
		}
		b := pf.anchor[bg] - 1
		pf.buckets[b] = append(pf.buckets[b], h)
	}
	return pf
}

func bigram(first, second byte) uint16 { return uint16(first) | uint16(second)<<8 }

// byteCommonness lists printable bytes and the newline from the most to the
// least frequent in the text files of container images (source code, configuration, package
// metadata, documentation). It only steers the choice of anchors, and with it
// the speed of the scan, never its result.
const byteCommonness = " etrsin\naolcdp,'ufh.m_()\"g:b=y0-wvAxkE1S#T/IC2R\\N{}[]PODL;B3FM45`>U6*j|89q$G+7HVQzW&?!KY<X%@J~Z^"

// rarestBigram returns the offset in hint of the bigram least likely to occur
// in ordinary text: the one whose bytes come latest in byteCommonness (bytes
// not listed count as rarest); the first of equals.
func rarestBigram(hint string) int {
	rank := func(c byte) int {
		if i := strings.IndexByte(byteCommonness, c); i >= 0 {
			return i
		}
		return len(byteCommonness)
	}
	best, bestScore := 0, -1
	for k := 0; k+1 < len(hint); k++ {
		if s := rank(hint[k]) + rank(hint[k+1]); s > bestScore {
			best, bestScore = k, s
		}
	}
	return best
}

// selected returns the bits of the detectors to run on text.
func (pf *prefilter) selected(text string) uint64 {
	found := pf.always
	if pf.single != nil {
		if strings.Contains(text, pf.single.hint) {
			found |= pf.single.dets
		}
		return found
	}
	if found == pf.all {
		return found
	}
	// Eight bigrams per step: load eight bytes and the next one, and look
	// their bigrams up; only a step with an anchor among them looks closer.
	// The bytes are only read, never written.
	t, b := pf.anchor, unsafe.Slice(unsafe.StringData(text), len(text))
	rest := b
	for len(rest) >= 9 {
		w := binary.LittleEndian.Uint64(rest)
		if t[uint16(w)]|t[uint16(w>>8)]|t[uint16(w>>16)]|t[uint16(w>>24)]|
			t[uint16(w>>32)]|t[uint16(w>>40)]|t[uint16(w>>48)]|t[uint16(w>>56)|uint16(rest[8])<<8] != 0 {
			i := len(b) - len(rest)
			for j := i; j < i+8; j++ {
				if k := t[bigram(b[j], b[j+1])]; k != 0 {
					found |= pf.match(text, j, k-1)
				}
			}
			if found == pf.all {
				return found
			}
		}
		rest = rest[8:]
	}
	for i := len(b) - len(rest); i+1 < len(b); i++ {
		if k := t[bigram(b[i], b[i+1])]; k != 0 {
			found |= pf.match(text, i, k-1)
		}
	}
	return found
}

// match returns the bits of the detectors whose hints of bucket b, anchored
// at text[at], are there.
func (pf *prefilter) match(text string, at int, b uint8) uint64 {
	var found uint64
	for _, h := range pf.buckets[b] {
		start := at - h.offset
		if start >= 0 && len(text)-start >= len(h.hint) && text[start:start+len(h.hint)] == h.hint {
			found |= h.dets
		}
	}
	return found
}
