package gate_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/upstream"
	"github.com/portcullis-dev/portcullis/verify"
)

// readLog is an http.RoundTripper that records every request the gateway sends the
// upstream. Past ceiling requests it refuses to send more, so that an unbounded
// verification ends quickly (in an error) instead of reading for minutes.
type readLog struct {
	next    http.RoundTripper
	ceiling int
	mu      sync.Mutex
	reqs    []string // "METHOD path"
}

func (l *readLog) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.reqs = append(l.reqs, req.Method+" "+req.URL.Path)
	n := len(l.reqs)
	l.mu.Unlock()
	if n > l.ceiling {
		return nil, errors.New("test ceiling: the gateway sent more than " + fmt.Sprint(l.ceiling) + " requests to the upstream")
	}
	return l.next.RoundTrip(req)
}

// mark returns the number of requests so far.
func (l *readLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// since returns the requests sent after mark.
func (l *readLog) since(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs[mark:]...)
}

// discoveryOnly reports whether every request in reqs is one of the three reads that find
// img's signature artifacts: the `.sig` tag, the referrers API, the fallback tag.
func discoveryOnly(reqs []string, img string) bool {
	tag := strings.Replace(img, ":", "-", 1)
	for _, r := range reqs {
		if !strings.HasSuffix(r, "/manifests/"+tag+".sig") && !strings.HasSuffix(r, "/referrers/"+img) && !strings.HasSuffix(r, "/manifests/"+tag) {
			return false
		}
	}
	return true
}

// hostileLayers is how many signature layers each hostile referrer carries.
const hostileLayers = 2000

// pushHostileReferrers pushes n cosign signature referrers of repo@img, each with
// hostileLayers simple-signing layers signed by a stranger's key, and returns their digests.
func pushHostileReferrers(t *testing.T, host, repo, img string, n int) []string {
	t.Helper()
	payload := cosigntest.Payload(host+"/"+repo, img)
	var out []string
	for range n {
		layers := make([]cosigntest.SignatureLayer, hostileLayers)
		for j := range layers {
			// One payload blob naming the image, a different signature on every layer
			// (random bytes, well-formed base64, verifying with no key): each layer is one
			// more blob read for a verifier that reads them all.
			sig := make([]byte, 71)
			_, _ = rand.Read(sig)
			layers[j] = cosigntest.SignatureLayer{Payload: payload, Signature: base64.StdEncoding.EncodeToString(sig)}
		}
		out = append(out, cosigntest.PushSignatureReferrer(t, host, repo, img, layers...))
	}
	return out
}

// budgetGate is a gate over reg verifying signatures through a cached verifier whose
// upstream requests go through log; replicas made by it share one cache. The verifier
// logs to logs, when given.
func budgetGate(t *testing.T, reg string, p *policy.Policy, log *readLog, shared cache.LockingStore, logs ...io.Writer) *gate.Gate {
	t.Helper()
	up, err := upstream.New(reg, log)
	if err != nil {
		t.Fatal(err)
	}
	var opts []gate.CachedVerifierOption
	for _, w := range logs {
		opts = append(opts, gate.WithVerifierLogger(slog.New(slog.NewJSONHandler(w, nil))))
	}
	sigs := gate.NewCachedVerifier(verify.New(up), cache.NewFlight(shared), opts...)
	return gate.New(p, up, &memSink{}, gate.WithSignatures(sigs),
		gate.WithClock(func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }))
}

// TestSignedImageStaysPullableUnderHostileReferrers: 8 referrers with thousands of
// signature layers each sit on a signed image. Its pull reads a handful of things from
// the upstream, none of the hostile referrers, and the next pull only rediscovers the
// signature artifacts (the verification is cached).
func TestSignedImageStaysPullableUnderHostileReferrers(t *testing.T) {
	signers := []struct {
		name string
		sign func(t *testing.T, host, repo, img string, k cosigntest.Key)
	}{
		{"cosign v2 .sig tag", func(t *testing.T, host, repo, img string, k cosigntest.Key) {
			cosigntest.SignLegacy(t, host, repo, img, k)
		}},
		{"cosign v3 bundle referrer", func(t *testing.T, host, repo, img string, k cosigntest.Key) {
			cosigntest.PushBundle(t, host, repo, img, k)
		}},
		{"cosign v2 OCI 1.1 signature referrer", func(t *testing.T, host, repo, img string, k cosigntest.Key) {
			cosigntest.PushSignatureReferrer(t, host, repo, img, k.Layer(t, host, repo, img))
		}},
	}
	for _, s := range signers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			reg := regtest.Registry(t)
			host := strings.TrimPrefix(reg, "http://")
			release := cosigntest.NewKey(t)
			img := pushRandom(t, reg, "prod/api:1.0.0")
			hostile := pushHostileReferrers(t, host, "prod/api", img, 8)
			s.sign(t, host, "prod/api", img, release)

			log := &readLog{next: http.DefaultTransport, ceiling: 2000}
			shared := cache.NewMemory(16 << 20)
			g := budgetGate(t, reg, signaturePolicy(t, release, false), log, shared)

			mark := log.mark()
			if res := pull(g, "prod/api", img, nil); res.Verdict != policy.VerdictAllow {
				t.Fatalf("signed image under hostile referrers: %s %q", res.Verdict, res.Message)
			}
			reads := log.since(mark)
			// Discovery for the cache key (3), discovery again to verify (3), then the
			// signature: a blob, or a referrer manifest and its blob.
			if len(reads) > 8 {
				t.Errorf("%d upstream requests for one pull of a signed image, want at most 8:\n%s", len(reads), strings.Join(reads, "\n"))
			}
			for _, r := range reads {
				for _, h := range hostile {
					if strings.HasSuffix(r, h) {
						t.Errorf("hostile referrer %s was read although the image's signature was found first", h)
					}
				}
			}

			mark = log.mark()
			if res := pull(g, "prod/api", img, nil); res.Verdict != policy.VerdictAllow {
				t.Fatalf("second pull: %s %q", res.Verdict, res.Message)
			}
			if again := log.since(mark); len(again) != 3 || !discoveryOnly(again, img) {
				t.Errorf("second pull sent %d requests, want only the 3 that find the signature artifacts (the verification is cached):\n%s", len(again), strings.Join(again, "\n"))
			}
		})
	}
}

// TestUnsignedImageWithHostileReferrersIsDeniedAfterBoundedReads: the hostile referrers
// are read only within the verification budget, the denial names what was left unread,
// and the failure is remembered: later pulls, on this replica or another, read nothing
// but the signature artifacts' list.
func TestUnsignedImageWithHostileReferrersIsDeniedAfterBoundedReads(t *testing.T) {
	t.Parallel()
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	release := cosigntest.NewKey(t)
	img := pushRandom(t, reg, "prod/api:2.0.0")
	pushHostileReferrers(t, host, "prod/api", img, 8)

	log := &readLog{next: http.DefaultTransport, ceiling: 2000}
	shared := cache.NewMemory(16 << 20)
	p := signaturePolicy(t, release, false)
	var logs regtest.LogBuffer
	a, b := budgetGate(t, reg, p, log, shared, &logs), budgetGate(t, reg, p, log, shared, &logs)

	mark := log.mark()
	res := pull(a, "prod/api", img, nil)
	if res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "verification budget") {
		t.Fatalf("unsigned image with hostile referrers: %s %q, want a denial naming the verification budget", res.Verdict, res.Message)
	}
	budget := verify.DefaultBudget()
	if n := len(log.since(mark)); n > 3+budget.Reads {
		t.Errorf("%d upstream requests for one pull, want at most %d (discovery for the cache key, then the verification budget)", n, 3+budget.Reads)
	}
	if l := logs.String(); strings.Count(l, `"msg":"signature verification over budget"`) != 1 || !strings.Contains(l, `"exceeded":"`) {
		t.Errorf("log %q, want one line saying the verification went over budget and which limits", l)
	}
	for name, g := range map[string]*gate.Gate{"same replica": a, "other replica": b} {
		mark = log.mark()
		if res := pull(g, "prod/api", img, nil); res.Verdict != policy.VerdictDeny {
			t.Fatalf("%s, second pull: %s %q", name, res.Verdict, res.Message)
		}
		if again := log.since(mark); len(again) != 3 || !discoveryOnly(again, img) {
			t.Errorf("%s, second pull sent %d requests, want only the 3 that find the signature artifacts (the failure is cached):\n%s", name, len(again), strings.Join(again, "\n"))
		}
	}
	if n := strings.Count(logs.String(), "over budget"); n != 1 {
		t.Errorf("%d over-budget log lines after cached pulls, want still 1", n)
	}
}

// TestSignatureOnAnotherDigestNeverCounts: signatures by the trusted key, made for image
// A, attached to image B in every format (a `.sig` payload naming A, a signature
// referrer of B whose payload names A, A's bundle referrer listed in B's fallback tag) do
// not let B through, before or after A's own verification is cached.
func TestSignatureOnAnotherDigestNeverCounts(t *testing.T) {
	t.Parallel()
	reg := regtest.Registry(t)
	host := strings.TrimPrefix(reg, "http://")
	release := cosigntest.NewKey(t)
	a := pushRandom(t, reg, "prod/api:3.0.0")
	b := pushRandom(t, reg, "prod/api:3.0.1")
	bundleOfA := cosigntest.PushBundle(t, host, "prod/api", a, release)
	cosigntest.PushLegacy(t, host, "prod/api", b, cosigntest.Payload(host+"/prod/api", a), release.Sign)
	cosigntest.PushSignatureReferrer(t, host, "prod/api", b, release.Layer(t, host, "prod/api", a))
	appendToFallbackIndex(t, reg, "prod/api", b, bundleOfA)

	log := &readLog{next: http.DefaultTransport, ceiling: 2000}
	g := budgetGate(t, reg, signaturePolicy(t, release, false), log, cache.NewMemory(16<<20))
	for round := range 2 {
		if res := pull(g, "prod/api", b, nil); res.Verdict != policy.VerdictDeny || !strings.Contains(res.Message, "another digest") {
			t.Fatalf("round %d: B carrying A's signatures: %s %q, want denied as signatures for another digest", round, res.Verdict, res.Message)
		}
		if res := pull(g, "prod/api", a, nil); res.Verdict != policy.VerdictAllow {
			t.Fatalf("round %d: A: %s %q", round, res.Verdict, res.Message)
		}
	}
}

// appendToFallbackIndex adds the manifest referrer (by digest) to the referrers fallback
// tag of repo@subject, as a client maintaining the tag scheme would.
func appendToFallbackIndex(t *testing.T, reg, repo, subject, referrer string) {
	t.Helper()
	base := reg + "/v2/" + repo + "/manifests/"
	get := func(ref string) ([]byte, string) {
		req, _ := http.NewRequest(http.MethodGet, base+ref, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return nil, ""
		}
		return body, resp.Header.Get("Content-Type")
	}
	m, _ := get(referrer)
	if m == nil {
		t.Fatalf("referrer %s not found", referrer)
	}
	tag := strings.Replace(subject, ":", "-", 1)
	index := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{}}
	if idx, _ := get(tag); idx != nil {
		if err := json.Unmarshal(idx, &index); err != nil {
			t.Fatal(err)
		}
	}
	index["manifests"] = append(index["manifests"].([]any), map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": referrer, "size": len(m), "artifactType": cosigntest.BundleMediaType,
	})
	body, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, base+tag, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT fallback tag: %s", resp.Status)
	}
}
