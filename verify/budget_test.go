package verify_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/verify"
)

func TestGoal(t *testing.T) {
	res := func(names ...string) verify.Result {
		var r verify.Result
		for _, n := range names {
			r.Verified = append(r.Verified, verify.Signature{Authority: n})
		}
		return r
	}
	one := verify.Requirement{Authorities: []string{"security", "release"}, Threshold: 1}
	two := verify.Requirement{Authorities: []string{"release", "security", "qa"}, Threshold: 2}
	tests := []struct {
		name string
		goal verify.Goal
		res  verify.Result
		met  bool
	}{
		{"zero goal is never met", verify.Goal{}, res("release"), false},
		{"one of two", verify.Goal{Requirements: []verify.Requirement{one}}, res("release"), true},
		{"none of them", verify.Goal{Requirements: []verify.Requirement{one}}, res("qa"), false},
		{"unsigned", verify.Goal{Requirements: []verify.Requirement{one}}, res(), false},
		{"threshold two, one signer twice", verify.Goal{Requirements: []verify.Requirement{two}}, res("qa", "qa"), false},
		{"threshold two", verify.Goal{Requirements: []verify.Requirement{two}}, res("qa", "security"), true},
		{"every requirement", verify.Goal{Requirements: []verify.Requirement{one, two}}, res("qa", "release"), true},
		{"every requirement, one missing", verify.Goal{Requirements: []verify.Requirement{one, two}}, res("qa"), false},
		{"threshold 0 means 1", verify.Goal{Requirements: []verify.Requirement{{Authorities: []string{"qa"}}}}, res(), false},
	}
	for _, tt := range tests {
		if got := tt.goal.Met(tt.res); got != tt.met {
			t.Errorf("%s: Met = %v, want %v", tt.name, got, tt.met)
		}
	}

	a := verify.Goal{Requirements: []verify.Requirement{one, two}}
	b := verify.Goal{Requirements: []verify.Requirement{
		{Authorities: []string{"qa", "security", "release"}, Threshold: 2},
		{Authorities: []string{"release", "security", "release"}, Threshold: 1},
	}}
	if a.String() != b.String() || a.String() == (verify.Goal{}).String() {
		t.Errorf("String: %q and %q, want equal (same requirements) and unlike the zero Goal's %q", a, b, verify.Goal{})
	}
	if a.String() == (verify.Goal{Requirements: []verify.Requirement{one}}).String() {
		t.Errorf("String does not tell %q from a goal with fewer requirements", a)
	}
}

// pushSignatureReferrer pushes a cosign signature referrer of img (cosign v2
// `--registry-referrers-mode=oci-1-1`) with the given simple-signing layers.
func (r *reg) pushSignatureReferrer(t testing.TB, img image, sigs ...legacySig) string {
	t.Helper()
	blobs := map[string]map[string]any{}
	layers := make([]any, len(sigs))
	for i, s := range sigs {
		d, ok := blobs[string(s.payload)]
		if !ok {
			d = r.pushBlob(t, img.repo, s.payload, s.mediaType)
			blobs[string(s.payload)] = d
		}
		layers[i] = map[string]any{"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"], "annotations": s.annotations}
	}
	return r.pushBundle(t, img.repo, img, nil, "", func(m map[string]any) {
		m["artifactType"] = "application/vnd.dev.cosign.artifact.sig.v1+json"
		m["layers"] = layers
		delete(m, "annotations")
	})
}

// hostile pushes n cosign signature referrers of img, each with layers simple-signing
// layers naming img whose signatures are random bytes: every layer is one blob read.
func (r *reg) hostile(t testing.TB, img image, n, layers int) []string {
	t.Helper()
	p := r.simpleSigning(t, img.repo, img.digest)
	var out []string
	for range n {
		sigs := make([]legacySig, layers)
		for j := range sigs {
			b := make([]byte, 71)
			_, _ = rand.Read(b)
			sigs[j] = legacySig{payload: p, mediaType: simpleSigningMT, annotations: map[string]string{sigAnnotation: base64.StdEncoding.EncodeToString(b)}}
		}
		out = append(out, r.pushSignatureReferrer(t, img, sigs...))
	}
	return out
}

// TestVerifyStopsWhenTheGoalIsMet: the `.sig` tag is examined first; what the goal does
// not need is not read.
func TestVerifyStopsWhenTheGoalIsMet(t *testing.T) {
	t.Parallel()
	for _, reg := range []struct {
		name string
		new  func(testing.TB, ...verify.Option) *reg
	}{{"distribution (fallback tag)", distribution}, {"referrers API", ggcrRegistry}} {
		t.Run(reg.name, func(t *testing.T) {
			t.Parallel()
			r := reg.new(t)
			release, security := newKey(t, "p256"), newKey(t, "ed25519")
			img := r.pushImage(t, "team/goal")
			hostile := r.hostile(t, img, 3, 40)
			r.pushLegacy(t, img, r.signLegacy(t, release, img))
			bundle := r.pushBundle(t, img.repo, img, signBundle(t, security, img), cosignPredicate)
			auths := []verify.Authority{release.authority(t), security.authority(t)}
			need := func(threshold int, names ...string) verify.Goal {
				return verify.Goal{Requirements: []verify.Requirement{{Authorities: names, Threshold: threshold}}}
			}
			tests := []struct {
				name      string
				goal      verify.Goal
				verified  []string
				met       bool
				maxReads  int
				readsLeft []string // artifacts that must not be read
			}{
				// discovery (3) and the .sig layer's blob
				{"release alone: the .sig tag", need(1, "p256"), []string{"p256"}, true, 4, append([]string{bundle}, hostile...)},
				// then the bundle referrer (small, bundle-typed: first) and its blob
				{"security alone: the bundle next", need(1, "ed25519"), []string{"ed25519", "p256"}, true, 6, hostile},
				{"both", need(2, "p256", "ed25519"), []string{"ed25519", "p256"}, true, 6, hostile},
				// never met: everything within the budget
				{"an authority that never signed", need(1, "qa"), []string{"ed25519", "p256"}, false, 3 + 1 + 2 + 3*(1+32), nil},
			}
			for _, tt := range tests {
				_, mark := r.reqs.since(0)
				res, err := r.verifier.Verify(context.Background(), img.repo, img.digest, auths, tt.goal)
				if err != nil {
					t.Fatal(err)
				}
				reqs, _ := r.reqs.since(mark)
				if got := res.Authorities(); !slices.Equal(got, tt.verified) || res.Spent.GoalMet != tt.met {
					t.Errorf("%s: verified by %v (goal met: %v), want %v (%v)", tt.name, got, res.Spent.GoalMet, tt.verified, tt.met)
				}
				if len(reqs) != res.Spent.Reads || len(reqs) > tt.maxReads {
					t.Errorf("%s: %d requests (Spent.Reads %d), want at most %d:\n%s", tt.name, len(reqs), res.Spent.Reads, tt.maxReads, strings.Join(reqs, "\n"))
				}
				for _, q := range reqs {
					for _, a := range tt.readsLeft {
						if strings.HasSuffix(q, a) {
							t.Errorf("%s: %s was read although the goal was met before its turn", tt.name, a)
						}
					}
				}
				if tt.met && res.Spent.Unexamined == 0 {
					t.Errorf("%s: Spent.Unexamined is 0, want the artifacts left unread counted", tt.name)
				}
			}
		})
	}
}

// TestBudgetLimits: each limit alone bounds the reads of an unsigned image under 20
// hostile referrers; what is left over is reported, never counted.
func TestBudgetLimits(t *testing.T) {
	t.Parallel()
	k := newKey(t, "p256")
	setup := ggcrRegistry(t)
	img := setup.pushImage(t, "team/hostile")
	setup.hostile(t, img, 20, 10)
	tests := []struct {
		name     string
		budget   verify.Budget
		exceeded []string
		maxReads int
		check    func(t *testing.T, res verify.Result)
	}{
		{"referrers", verify.Budget{Referrers: 2}, []string{verify.LimitReferrers}, 3 + 2*(1+10), func(t *testing.T, res verify.Result) {
			var over []verify.Rejection
			for _, r := range res.Rejected {
				if r.Kind == verify.KindOverBudget {
					over = append(over, r)
				}
			}
			// 18 left: 16 listed one by one, the 17th sums up the last two.
			if len(over) != 17 || !strings.Contains(over[16].Detail, "nor the 1 referrers listed after it") || res.Spent.Unexamined != 18 {
				t.Errorf("%d over-budget rejections (last %+v), %d unexamined; want 17 and 18", len(over), over[len(over)-1], res.Spent.Unexamined)
			}
		}},
		{"layers", verify.Budget{Layers: 3}, []string{verify.LimitLayers}, 3 + 20*(1+3), nil},
		{"reads", verify.Budget{Reads: 20}, []string{verify.LimitReads}, 20, nil},
		{"bytes", verify.Budget{Bytes: 12 << 10}, []string{verify.LimitBytes}, 128, func(t *testing.T, res verify.Result) {
			if res.Spent.Bytes > 12<<10+1<<20 {
				t.Errorf("read %d bytes, over the budget by more than one manifest", res.Spent.Bytes)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReg(t, setup.url, verify.WithBudget(tt.budget))
			res, err := r.verifier.Verify(context.Background(), img.repo, img.digest, []verify.Authority{k.authority(t)}, verify.Goal{})
			if err != nil {
				t.Fatal(err)
			}
			reqs, _ := r.reqs.since(0)
			if len(res.Verified) != 0 {
				t.Errorf("verified %+v", res.Verified)
			}
			if !slices.Equal(res.Spent.Exceeded, tt.exceeded) {
				t.Errorf("exceeded %v, want %v", res.Spent.Exceeded, tt.exceeded)
			}
			if len(reqs) != res.Spent.Reads || len(reqs) > tt.maxReads {
				t.Errorf("%d requests (Spent.Reads %d), want at most %d", len(reqs), res.Spent.Reads, tt.maxReads)
			}
			if !slices.ContainsFunc(res.Rejected, func(r verify.Rejection) bool { return r.Kind == verify.KindOverBudget }) {
				t.Errorf("no over-budget rejection in %+v", res.Rejected)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}

	t.Run("default budget", func(t *testing.T) {
		r := newReg(t, setup.url)
		res, err := r.verifier.Verify(context.Background(), img.repo, img.digest, []verify.Authority{k.authority(t)}, verify.Goal{})
		if err != nil {
			t.Fatal(err)
		}
		reqs, _ := r.reqs.since(0)
		if b := verify.DefaultBudget(); len(reqs) > b.Reads || len(res.Verified) != 0 {
			t.Errorf("%d requests, want at most %d; verified %+v", len(reqs), b.Reads, res.Verified)
		}
	})
}
