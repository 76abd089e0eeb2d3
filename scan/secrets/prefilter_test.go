package secrets

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// containsAny is how detectors were chosen before the prefilter: a separate
// search for each hint.
func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// perDetector returns the bits of the detectors of dets that the separate
// searches select.
func perDetector(dets []detector, text string) uint64 {
	var found uint64
	for i, d := range dets {
		if len(d.hints) == 0 || containsAny(text, d.hints) {
			found |= 1 << i
		}
	}
	return found
}

// checkPrefilter fails unless the prefilters select, for text, exactly the
// detectors the separate searches select.
func checkPrefilter(t testing.TB, text string) {
	t.Helper()
	for _, c := range []struct {
		pf   *prefilter
		dets []detector
	}{{textFilter, textDetectors}, {pemFilter, []detector{pemDetector}}} {
		if got, want := c.pf.selected(text), perDetector(c.dets, text); got != want {
			var names []string
			for i, d := range c.dets {
				if (got^want)&(1<<i) != 0 {
					names = append(names, d.typ)
				}
			}
			t.Fatalf("prefilter selects %b, per-detector search %b (differing: %v) in %d bytes:\n%.300q", got, want, names, len(text), text)
		}
	}
}

// pemFilter is a prefilter of one detector with one hint: it takes the
// strings.Contains path.
var pemFilter = newPrefilter(pemDetector)

func allHints() []string {
	var hints []string
	for _, d := range textDetectors {
		hints = append(hints, d.hints...)
	}
	return hints
}

// prefilterCorpus returns varied inputs for the prefilter: every hint alone,
// at every offset of the scan's eight-byte steps and cut short by a byte;
// pairs of hints, overlapping and case-changed; the credentials the other
// tests use; random text built from the hints' bytes (near misses
// everywhere), random bytes; and the Go standard library's net sources. It
// reports how many of them are Go sources.
func prefilterCorpus(t testing.TB) ([]string, int) {
	hints := allHints()
	var corpus []string
	for n := range 4 {
		corpus = append(corpus, strings.Repeat("-", n))
	}
	for _, h := range hints {
		for pad := range 18 {
			for _, fill := range []string{"x", "\x00", "-", " "} {
				p := strings.Repeat(fill, pad)
				corpus = append(corpus, h, p+h, h+p, p+h+p, p+h[:len(h)-1], h[1:]+p, p+h[:len(h)-1]+"\n"+h[len(h)-1:],
					p+strings.ToUpper(h)+p, p+strings.ToLower(h)+p)
			}
		}
		for _, g := range hints {
			corpus = append(corpus, h+g, g[:len(g)-1]+h, h[:len(h)-1]+g, h[:1]+g+h[1:])
		}
	}
	corpus = append(corpus,
		fakeAWSID()+" "+fakeAWSSecret(), "aws_secret_access_key = "+fakeAWSSecret(), fakeGitHub("ghp_"), fakeGitHub("gho_"),
		fakeGitHub("ghu_"), fakeGitHub("ghs_"), fakeGitHub("ghr_"), fakeGitHubPAT(),
		fakeGitLab(), fakeSlackBot(), fakeSlackUser(), fakeSlackWebhook(), fakeStripe("sk_live_"), fakeStripe("rk_live_"), fakeNPM(),
		"//registry.npmjs.org/:_authToken="+fakeNPM(), fakePyPI(), fakeJWT(), rsaPEM(t), ecPEM(t), pkcs8PEM(t),
		opensshPEM(t), encryptedLegacyPEM(t), pgpPrivateBlock(), publicKeyPEM(t), certificatePEM(t),
		gcpServiceAccount(t), "postgres://app:s3cretpassw0rd@db:5432/app")
	// Random text over the hints' own bytes, so that anchors, prefixes and
	// near misses of hints are everywhere.
	var alphabet []byte
	for _, h := range hints {
		alphabet = append(alphabet, h...)
	}
	for range 3000 {
		n := rng.IntN(300)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		// Sometimes a whole hint at a random place.
		if n > 20 && rng.IntN(3) == 0 {
			h := hints[rng.IntN(len(hints))]
			copy(b[rng.IntN(n-len(h)):], h)
		}
		corpus = append(corpus, string(b))
	}
	for range 500 {
		b := make([]byte, rng.IntN(2000))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		corpus = append(corpus, string(b))
	}
	files, _ := filepath.Glob(filepath.Join(os.Getenv("GOROOT"), "src", "net", "*", "*.go"))
	if len(files) == 0 {
		files, _ = filepath.Glob("/usr/local/go/src/net/*/*.go")
	}
	for _, f := range files {
		if d, err := os.ReadFile(f); err == nil {
			corpus = append(corpus, string(d))
		}
	}
	return corpus, len(files)
}

// TestPrefilterSelectsAsPerDetectorSearch compares the single-pass prefilter
// with a separate search for each detector's hints over prefilterCorpus.
func TestPrefilterSelectsAsPerDetectorSearch(t *testing.T) {
	corpus, sources := prefilterCorpus(t)
	selected := make([]int, len(textDetectors))
	for _, text := range corpus {
		checkPrefilter(t, text)
		for i := range textDetectors {
			if textFilter.selected(text)&(1<<i) != 0 {
				selected[i]++
			}
		}
	}
	// Each detector was selected by some inputs and skipped for others, so
	// both answers were compared for every one.
	for i, d := range textDetectors {
		if selected[i] == 0 || selected[i] == len(corpus) {
			t.Errorf("%s selected for %d of %d inputs", d.typ, selected[i], len(corpus))
		}
	}
	t.Logf("%d inputs, %d of them Go sources", len(corpus), sources)
}

// TestDetectorsFindOnlyWhereAHintIs checks what the prefilter relies on: a
// detector finds nothing in text that holds none of its hints, so skipping
// it there changes no result. Each input is also searched with every hint
// of the detector removed.
func TestDetectorsFindOnlyWhereAHintIs(t *testing.T) {
	corpus, _ := prefilterCorpus(t)
	found := make([]int, len(textDetectors))
	for _, text := range corpus {
		for i, d := range textDetectors {
			stripped := text
			for _, h := range d.hints {
				// Break every occurrence, keeping the rest of the text.
				stripped = strings.ReplaceAll(stripped, h, h[:1]+"\x00"+h[1:])
			}
			if containsAny(stripped, d.hints) {
				continue // breaking one hint made another
			}
			if ms := d.find(nil, stripped); len(ms) > 0 {
				t.Fatalf("%s found %q in text without its hints %q", d.typ, stripped[ms[0].start:ms[0].end], d.hints)
			}
			if len(d.find(nil, text)) > 0 {
				found[i]++
			}
		}
	}
	for i, d := range textDetectors {
		if found[i] == 0 {
			t.Errorf("%s found nothing in the corpus", d.typ)
		}
	}
}

// TestAWSKeyIDsFoundNearTheirPrefixes checks that looking for access key IDs
// only after "AKIA" and "ASIA" finds what the regular expression finds over
// the whole text.
func TestAWSKeyIDsFoundNearTheirPrefixes(t *testing.T) {
	texts := []string{"", "AKIA", "AKIA" + strings.Repeat("A", 16), "AKIA" + strings.Repeat("A", 15), "AKIAAKIA" + strings.Repeat("B", 16)}
	for range 5000 {
		var b strings.Builder
		for b.Len() < rng.IntN(200) {
			switch rng.IntN(6) {
			case 0:
				b.WriteString("AKIA")
			case 1:
				b.WriteString("ASIA")
			case 2:
				b.WriteString(randFrom(base32Alphabet, rng.IntN(20)))
			default:
				b.WriteString(randFrom("AKISZ27x =\n\xc3", 1))
			}
		}
		texts = append(texts, b.String())
	}
	texts = append(texts, fakeAWSID()+fakeAWSID()[4:], "x"+fakeAWSID()+"\n"+fakeAWSID())
	for _, text := range texts {
		want := awsKeyID.FindAllStringIndex(text, -1)
		var got [][]int
		findKeyIDs(text, func(start, end int) {
			got = append(got, []int{start, end})
		})
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("in %q: near the prefixes %v, whole text %v", text, got, want)
		}
	}
}

// TestPrefilterAnchors checks what the prefilter is built from: every hint at
// least 2 bytes long, an anchor inside each, and no hint lost.
func TestPrefilterAnchors(t *testing.T) {
	n := 0
	for _, bucket := range textFilter.buckets {
		for _, h := range bucket {
			n++
			if h.offset < 0 || h.offset+2 > len(h.hint) {
				t.Errorf("hint %q anchored at %d", h.hint, h.offset)
			}
			if textFilter.anchor[bigram(h.hint[h.offset], h.hint[h.offset+1])] == 0 {
				t.Errorf("hint %q: anchor %q not in the table", h.hint, h.hint[h.offset:h.offset+2])
			}
		}
	}
	if want := len(allHints()); n != want {
		t.Errorf("%d hints anchored, want %d", n, want)
	}
	if pemFilter.single == nil || pemFilter.single.hint != pemDetector.hints[0] {
		t.Errorf("a one-detector prefilter does not look for %q alone", pemDetector.hints[0])
	}
	if got := rarestBigram("ecret"); got != 1 {
		t.Errorf("ecret anchored at %d (%q), want 1 (cr)", got, "ecret"[got:got+2])
	}
}

// FuzzPrefilter compares the prefilter with a separate search for each
// detector's hints on arbitrary input.
func FuzzPrefilter(f *testing.F) {
	for _, h := range allHints() {
		f.Add([]byte("0123456" + h))
		f.Add(bytes.Repeat([]byte(h[:len(h)-1]), 3))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPrefilter(t, string(data))
	})
}
