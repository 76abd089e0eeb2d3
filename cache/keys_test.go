package cache

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	dg1 = "sha256:" + strings.Repeat("a", 64)
	dg2 = "sha256:" + strings.Repeat("b", 64)
	day = time.Date(2026, 12, 15, 23, 30, 0, 0, time.UTC)
)

func TestKeysGolden(t *testing.T) {
	tests := []struct{ got, want string }{
		{LayerKey(dg1, dg2, "analyzer-3"), "portcullis:v1:layer:" + dg1 + ":" + dg2 + ":analyzer-3"},
		{ImageKey(dg1, dg2, "config/2"), "portcullis:v1:image:" + dg1 + ":" + dg2 + ":config/2"},
		{FindingsKey(dg1, "osv-2026-11-30"), "portcullis:v1:findings:" + dg1 + ":osv-2026-11-30"},
		{SignatureKey(dg1, dg2), "portcullis:v1:signature:" + dg1 + ":" + dg2},
		{ManifestKey(dg1), "portcullis:v1:manifest:" + dg1},
		{TagKey("team/app", "1.2.3"), "portcullis:v1:tag:team/app:1.2.3"},
		{DecisionKey("abc123", "osv-7", "prod", day, dg1, "pull", "team/app"),
			"portcullis:v1:decision:abc123:osv-7:prod:2026-12-15:" + dg1 + ":pull:team/app"},
		{LockKey(ManifestKey(dg1)), "portcullis:v1:lock:portcullis:v1:manifest:" + dg1},
		{TagKey("a:b", "50%"), "portcullis:v1:tag:a%3Ab:50%25"},
		{ManifestKey("not:a:digest"), "portcullis:v1:manifest:not%3Aa%3Adigest"},
		{PreviousKey("team/app"), "portcullis:v1:previous:team/app"},
		{BaselineKey("team/app", dg1), "portcullis:v1:baseline:team/app:" + dg1},
		{FirstSeenKey("team/app", "DSA-5764-1"), "portcullis:v1:firstseen:team/app:DSA-5764-1"},
		{FirstSeenKey("a:b", "x:y"), "portcullis:v1:firstseen:a%3Ab:x%3Ay"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %s\nwant %s", tt.got, tt.want)
		}
	}
}

func TestKeysAreUnambiguous(t *testing.T) {
	pairs := [][2]string{
		{TagKey("a:b", "c"), TagKey("a", "b:c")},
		{FindingsKey("sha256:x", "y:z"), FindingsKey("sha256:x:y", "z")},
		{ManifestKey("a:b%3Ac"), ManifestKey("a:b:c")},
		{TagKey("a%3Ab", "c"), TagKey("a:b", "c")},
		{DecisionKey("p", "d", "e", day, dg1, "pull", "x"), DecisionKey("p", "d", "e", day, dg1, "pull:x")},
		{DecisionKey("p:d", "e", "f", day, dg1, "pull"), DecisionKey("p", "d:e", "f", day, dg1, "pull")},
	}
	for _, p := range pairs {
		if p[0] == p[1] {
			t.Errorf("two different inputs build the same key %s", p[0])
		}
	}
}

func TestLayersHash(t *testing.T) {
	a := LayersHash([]string{dg1, dg2})
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(a) {
		t.Fatalf("hash = %s", a)
	}
	for _, other := range [][]string{{dg2, dg1}, {dg1}, {dg1, dg2, dg2}, {dg1 + dg2}, nil} {
		if LayersHash(other) == a {
			t.Errorf("layers %v hash like [dg1 dg2]", other)
		}
	}
	if LayersKey(a) != "portcullis:v1:layers:"+a {
		t.Errorf("key = %s", LayersKey(a))
	}
}

func TestArtifactsHash(t *testing.T) {
	a := ArtifactsHash([]string{dg1, dg2})
	if b := ArtifactsHash([]string{dg2, dg1, dg2}); a != b {
		t.Errorf("order or duplicates changed the hash: %s vs %s", a, b)
	}
	if c := ArtifactsHash([]string{dg1}); c == a {
		t.Error("a different set gave the same hash")
	}
	if e := ArtifactsHash(nil); !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(e) || e == a {
		t.Errorf("hash of no artifacts = %s", e)
	}
	in := []string{dg2, dg1}
	ArtifactsHash(in)
	if in[0] != dg2 {
		t.Error("ArtifactsHash sorted its caller's slice")
	}
}

// TestKeySchemaMatchesBuilders checks every documented pattern against its builder, so the
// docs/CACHING.md table generated from KeySchema cannot drift from the keys actually written.
func TestKeySchemaMatchesBuilders(t *testing.T) {
	samples := map[string]string{
		KindLayer:       LayerKey(dg1, dg2, "a1"),
		KindFindings:    FindingsKey(dg1, "r1"),
		KindSignature:   SignatureKey(dg1, ArtifactsHash([]string{dg2})),
		KindManifest:    ManifestKey(dg1),
		KindAttestation: AttestationKey(dg1, ArtifactsHash([]string{dg2})),
		KindTag:         TagKey("team/app", "v1"),
		KindDecision:    DecisionKey("p1", "r1", "prod", day, dg1, "pull", "team/app"),
		KindAccess:      AccessKey("team/app", "Basic Y2k6cHc="),
		KindCoverage:    CoverageKey("team/app", dg1),
		KindImage:       ImageKey(dg1, LayersHash([]string{dg2}), "config/1"),
		KindLayers:      LayersKey(LayersHash([]string{dg1, dg2})),
		KindPrevious:    PreviousKey("team/app"),
		KindBaseline:    BaselineKey("team/app", dg1),
		KindFirstSeen:   FirstSeenKey("team/app", "CVE-2024-5535"),
		KindLedger:      LedgerKey("team/app", "v1"),
		KindScanCred:    ScanCredKey("0123abcd"),
		KindLock:        LockKey(FindingsKey(dg1, "r1")),
	}
	schema := KeySchema()
	if len(schema) != len(samples) {
		t.Fatalf("KeySchema has %d kinds, the builders %d", len(schema), len(samples))
	}
	for _, d := range schema {
		sample, ok := samples[d.Kind]
		if !ok {
			t.Errorf("KeySchema documents unknown kind %q", d.Kind)
			continue
		}
		if !patternRegexp(d.Pattern).MatchString(sample) {
			t.Errorf("%s: pattern %s does not match built key %s", d.Kind, d.Pattern, sample)
		}
		if got := KindOf(sample); got != d.Kind {
			t.Errorf("KindOf(%s) = %s, want %s", sample, got, d.Kind)
		}
		if d.Notes == "" || (d.TTL <= 0 && d.Kind != KindLock) {
			t.Errorf("%s: notes and a TTL hint are required", d.Kind)
		}
	}
}

// patternRegexp turns a KeyDoc pattern into a regexp: {…Digest}, {digest}, {diffID} and
// {…Hash} match one digest, {name...} one or more components, {key} anything, and any
// other {name} one component.
func patternRegexp(pattern string) *regexp.Regexp {
	var re strings.Builder
	re.WriteString("^")
	rest := pattern
	for {
		open := strings.Index(rest, "{")
		if open < 0 {
			break
		}
		closing := strings.Index(rest, "}")
		re.WriteString(regexp.QuoteMeta(rest[:open]))
		name := rest[open+1 : closing]
		rest = rest[closing+1:]
		switch {
		case name == "key":
			re.WriteString(`.+`)
		case strings.HasSuffix(name, "..."):
			re.WriteString(`[^:]+(:[^:]+)*`)
		case strings.HasSuffix(strings.ToLower(name), "digest"), name == "diffID", strings.HasSuffix(name, "Hash"):
			re.WriteString(`[^:]+:[^:]+`)
		default:
			re.WriteString(`[^:]+`)
		}
	}
	re.WriteString(regexp.QuoteMeta(rest) + "$")
	return regexp.MustCompile(re.String())
}

func TestKindOf(t *testing.T) {
	for key, want := range map[string]string{
		"portcullis:v1:nonsense:x": KindOther,
		"portcullis:v2:layer:x":    KindOther,
		"layer:x":                  KindOther,
		"":                         KindOther,
		"portcullis:v1:tag":        KindTag,
	} {
		if got := KindOf(key); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", key, got, want)
		}
	}
}
