package secrets

import (
	"sort"
	"strings"
	"unsafe"
)

// match is one detector hit. It holds the raw secret only while a scan runs:
// Scan and ScanText turn matches into Secrets, which keep the redacted form.
type match struct {
	typ      string
	start    int    // byte offset of the secret in the scanned text
	end      int    // byte offset just past it
	secret   string // the raw value; never leaves the package
	redacted string
	conf     Confidence
	note     string
}

// detector finds one kind of secret in text.
type detector struct {
	typ string
	// priority decides between overlapping matches: the higher one is kept.
	priority int
	// hints are substrings (at least 2 bytes long) one of which every
	// match contains; text without any of them is not searched (see
	// prefilter). None means always search.
	hints []string
	find  func(text string) []match
}

// textDetectors run on text; pemDetector also runs on binary files.
var textDetectors = []detector{
	gcpDetector,
	awsDetector,
	githubDetector,
	gitlabDetector,
	slackTokenDetector,
	slackWebhookDetector,
	stripeDetector,
	npmDetector,
	pypiDetector,
	pemDetector,
	urlDetector,
	jwtDetector,
}

// textFilter selects among textDetectors, binaryFilter among the detectors
// run on binary files.
var (
	textFilter   = newPrefilter(textDetectors...)
	binaryFilter = newPrefilter(pemDetector)
)

// MaxFindings is the most secrets Scan and ScanText return for one file or
// text: the first ones in it. One is enough to fail a check; a hundred say
// the file is a credential dump.
const MaxFindings = 100

// maxHits bounds the matches weighed against each other for overlaps.
const maxHits = 2000

// Scan returns the secrets in the contents of the file at path. A binary file
// (a NUL byte in its first 8 KiB) is searched only for PEM private keys.
// Scan does not keep data after it returns, nor change it: the caller may
// reuse the buffer at once.
func Scan(path string, data []byte) []Secret {
	pf := textFilter
	if IsBinary(data) {
		pf = binaryFilter
	}
	// Search the bytes in place, not a copy: a layer analysis scans every
	// file it reads. run returns no string that shares their memory.
	found := run(pf, unsafe.String(unsafe.SliceData(data), len(data)))
	for i := range found {
		found[i].Path = path
	}
	return found
}

// ScanText returns the secrets in text, a piece of image metadata such as an
// environment variable, a label or a history entry's created_by command;
// source names it in the findings.
func ScanText(source, text string) []Secret {
	found := run(textFilter, text)
	for i := range found {
		found[i].Source = source
	}
	return found
}

// run applies the detectors pf selects to text and returns the surviving
// matches as Secrets, in the order they appear.
func run(pf *prefilter, text string) []Secret {
	type hit struct {
		match
		priority int
	}
	var hits []hit
	selected := pf.selected(text)
	for i, d := range pf.dets {
		if selected&(1<<i) == 0 {
			continue
		}
		for _, m := range d.find(text) {
			hits = append(hits, hit{m, d.priority})
		}
	}
	// Of overlapping matches keep the most specific, then the longest.
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].priority != hits[j].priority {
			return hits[i].priority > hits[j].priority
		}
		return hits[i].end-hits[i].start > hits[j].end-hits[j].start
	})
	// A file of nothing but tokens must not make this quadratic in its size.
	hits = hits[:min(len(hits), maxHits)]
	var kept []hit
	for _, h := range hits {
		overlaps := false
		for _, k := range kept {
			if h.start < k.end && k.start < h.end {
				overlaps = true
				break
			}
		}
		if !overlaps {
			kept = append(kept, h)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].start < kept[j].start })
	kept = kept[:min(len(kept), MaxFindings)]
	lines := newLineIndex(text)
	out := make([]Secret, 0, len(kept))
	for _, k := range kept {
		// Clone what a detector may have cut from text: Scan's text is the
		// caller's buffer, which it will overwrite.
		out = append(out, Secret{
			Type:       k.typ,
			Line:       lines.line(k.start),
			Redacted:   strings.Clone(k.redacted),
			Confidence: k.conf,
			Note:       strings.Clone(k.note),
		})
	}
	return out
}

// lineIndex maps byte offsets to 1-based line numbers.
type lineIndex struct{ newlines []int }

func newLineIndex(text string) lineIndex {
	var idx lineIndex
	for i := 0; i < len(text); {
		j := strings.IndexByte(text[i:], '\n')
		if j < 0 {
			break
		}
		idx.newlines = append(idx.newlines, i+j)
		i += j + 1
	}
	return idx
}

func (l lineIndex) line(offset int) int {
	return sort.SearchInts(l.newlines, offset) + 1
}
