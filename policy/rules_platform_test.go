package policy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// platformPolicy has a prod environment of arm64 nodes with a blocking platform rule and a
// dev environment without platforms.
const platformPolicy = `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: [linux/arm64/v8]}
  - {name: dev, repositories: ["dev/**"]}
rules:
  - {id: cluster-hardware, type: platform, mode: block}
`

func TestParsePlatformNormalisesAsContainerd(t *testing.T) {
	for _, c := range []struct {
		node, img string
		runs      bool
	}{
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64", "linux/aarch64", true},
		{"linux/arm64/v8", "linux/arm64/8", true},
		{"linux/arm64/v8", "linux/arm64/v8.0", true},
		{"linux/arm64/v8", "linux/arm64/v8.2", false},
		{"linux/arm64/v9", "linux/arm64/v8.2", true},
		{"linux/arm64/v8", "linux/arm/v7", true}, // containerd's default matcher: aarch32
		{"linux/arm64/v8", "linux/arm", true},
		{"linux/arm64/v8", "linux/amd64", false},
		{"linux/amd64", "linux/amd64/v1", true},
		{"linux/amd64/v1", "linux/amd64", true},
		{"linux/amd64", "linux/x86_64", true},
		{"linux/amd64", "linux/amd64/v2", false},
		{"linux/amd64/v3", "linux/amd64/v2", true},
		{"linux/amd64", "linux/386", true},
		{"linux/amd64", "linux/i386", true},
		{"linux/arm/v7", "linux/arm/v6", true},
		{"linux/arm/v7", "linux/armhf", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm/v6", "linux/arm64", false},
		{"linux/arm64", "windows/arm64", false},
		{"darwin/arm64", "macos/arm64", true},
		{"linux/s390x", "linux/s390x", true},
		{"linux/riscv64", "linux/amd64", false},
	} {
		node, err := ParsePlatform(c.node)
		if err != nil {
			t.Fatalf("%s: %v", c.node, err)
		}
		img := Platform{}
		parts := strings.Split(c.img, "/")
		img.OS, img.Architecture = parts[0], parts[1]
		if len(parts) == 3 {
			img.Variant = parts[2]
		}
		if got := runsOn(node, img); got != c.runs {
			t.Errorf("node %s runs %s: %v, want %v", c.node, c.img, got, c.runs)
		}
	}
}

func TestParsePlatformRefusesWhatWouldDenyEverything(t *testing.T) {
	for in, want := range map[string]string{
		"linux":                            "want os/arch[/variant]",
		"linux/arm64/v8/x":                 "want os/arch[/variant]",
		"linux//v8":                        "want os/arch[/variant] in lower case",
		"Linux/arm64":                      "in lower case",
		"linux/arm46":                      `unknown architecture "arm46"`,
		"linxu/arm64":                      `unknown operating system "linxu"`,
		"linux/arm64/v7":                   `unknown variant "v7" of arm64`,
		"linux/amd64/v5":                   `unknown variant "v5" of amd64`,
		"linux/arm/v9":                     `unknown variant "v9" of arm`,
		"linux/" + strings.Repeat("a", 40): "in lower case",
	} {
		if _, err := ParsePlatform(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePlatform(%q) = %v, want an error with %q", in, err, want)
		}
	}
	for _, ok := range []string{"linux/arm64/v8", "linux/arm64", "linux/amd64/v3", "linux/arm/v7", "windows/amd64", "linux/aarch64", "linux/arm64/v8.2"} {
		if _, err := ParsePlatform(ok); err != nil {
			t.Errorf("ParsePlatform(%q): %v", ok, err)
		}
	}
}

func TestPlatformPolicyIsValidatedWithFieldPaths(t *testing.T) {
	for name, c := range map[string]struct{ src, want string }{
		"bad platform": {`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: [linux/arm64/v8, linux/amd46]}
rules:
  - {id: p, type: platform, mode: block}
`, `environments[0].platforms[1]: unknown architecture "amd46"`},
		"empty list": {`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: []}
rules:
  - {id: p, type: platform, mode: block, environments: [prod]}
`, `environments[0].platforms`},
		"env without platforms": {`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: [linux/arm64]}
  - {name: dev, repositories: ["dev/**"]}
rules:
  - {id: p, type: platform, mode: block, environments: [prod, dev]}
`, `rules[0].environments[1]: environment "dev" declares no platforms`},
		"none declared": {`version: 1
environments:
  - {name: dev, repositories: ["dev/**"]}
rules:
  - {id: p, type: platform, mode: warn}
`, `rules[0]: a platform rule judges images against the platforms an environment's nodes run, and no environment declares platforms`},
		"parameter": {`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: [linux/arm64]}
rules:
  - {id: p, type: platform, mode: block, platforms: [linux/arm64]}
`, `rules[0].platforms: unknown field: platform rules take no parameters`},
		"not a string": {`version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: [{os: linux}]}
rules:
  - {id: p, type: platform, mode: block}
`, `environments[0].platforms[0]: want a string`},
	} {
		_, err := Parse([]byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

// ociIndex builds an index body with the given entries.
func ociIndex(entries ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})
	return b
}

// entry is an index entry for os/arch[/variant].
func entry(n int, platform string) map[string]any {
	e := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 100,
		"digest": fmt.Sprintf("sha256:%064x", n)}
	if platform != "" {
		parts := strings.Split(platform, "/")
		p := map[string]any{"os": parts[0], "architecture": parts[1]}
		if len(parts) == 3 {
			p["variant"] = parts[2]
		}
		e["platform"] = p
	}
	return e
}

// attestation is a buildx attestation entry for the image entry n.
func attestation(n int, platform string) map[string]any {
	e := entry(n+100, platform)
	e["annotations"] = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": fmt.Sprintf("sha256:%064x", n)}
	return e
}

func platformDecision(t *testing.T, a Action, repo, tag string, kind Kind, ev *PlatformEvidence) Decision {
	t.Helper()
	return mustParse(t, platformPolicy).Evaluate(Input{Action: a, Repository: repo, Tag: tag, Kind: kind, Platform: ev}, today)
}

func TestPlatformRuleJudgesAnIndex(t *testing.T) {
	amdOnly := IndexPlatforms(ociIndex(entry(1, "linux/amd64"), entry(2, "linux/amd64"), attestation(1, "unknown/unknown")))
	d := platformDecision(t, ActionPull, "prod/app", "1.0.0", KindIndex, &amdOnly)
	msg := d.DenyMessage()
	if d.Verdict != VerdictDeny || !strings.Contains(msg, "the index has linux/amd64 (not counted: 1 attestation manifest); environment prod's nodes run linux/arm64/v8") ||
		!strings.Contains(msg, "docker buildx build --platform linux/arm64/v8 --push") {
		t.Fatalf("%s:\n%s", d.Verdict, msg)
	}
	multi := IndexPlatforms(ociIndex(entry(1, "linux/amd64"), entry(2, "linux/arm64"), attestation(1, "unknown/unknown")))
	if d := platformDecision(t, ActionPull, "prod/app", "1.0.0", KindIndex, &multi); d.Verdict != VerdictAllow ||
		!strings.Contains(d.Results[0].Finding, "the index has linux/arm64, which environment prod's nodes (linux/arm64/v8) run") {
		t.Fatalf("%s: %+v", d.Verdict, d.Results)
	}
	// A push is judged the same way.
	if d := platformDecision(t, ActionPush, "prod/app", "1.0.0", KindIndex, &amdOnly); d.Verdict != VerdictDeny {
		t.Fatalf("push of an amd64-only index: %s", d.Verdict)
	}
	// Environments without platforms are not judged: the rule does not apply there.
	if d := platformDecision(t, ActionPull, "dev/app", "1.0.0", KindIndex, &amdOnly); d.Verdict != VerdictAllow || d.Results[0].Rule != NoRule {
		t.Fatalf("dev: %s %+v", d.Verdict, d.Results)
	}
}

func TestPlatformRuleHostileIndexEntriesDoNotCount(t *testing.T) {
	huge := strings.Repeat("arm64", 10000)
	withAnn := entry(3, "linux/arm64")
	withAnn["annotations"] = map[string]string{"vnd.docker.reference.type": "attestation-manifest"}
	sbom := entry(4, "linux/arm64")
	sbom["artifactType"] = "application/spdx+json"
	blob := entry(5, "linux/arm64")
	blob["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
	for name, body := range map[string][]byte{
		"arm64 only on an attestation": ociIndex(entry(1, "linux/amd64"), withAnn),
		"missing platform":             ociIndex(entry(1, "")),
		"empty os and arch":            ociIndex(map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "platform": map[string]string{"os": "", "architecture": ""}}),
		"os without arch":              ociIndex(map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "platform": map[string]string{"os": "linux"}}),
		"huge architecture":            ociIndex(map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "platform": map[string]string{"os": "linux", "architecture": huge}}),
		"unknown/unknown":              ociIndex(entry(1, "unknown/unknown")),
		"unknown arm64":                ociIndex(entry(1, "unknown/arm64")),
		"platform not an object":       []byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","platform":"linux/arm64"}]}`),
		"platform with control chars":  ociIndex(map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "platform": map[string]string{"os": "linux", "architecture": "arm64\n"}}),
		"an SBOM claiming arm64":       ociIndex(entry(1, "linux/amd64"), sbom),
		"a layer claiming arm64":       ociIndex(entry(1, "linux/amd64"), blob),
		"no entries":                   ociIndex(),
		"not JSON":                     []byte(`{"manifests":[`),
	} {
		ev := IndexPlatforms(body)
		d := platformDecision(t, ActionPull, "prod/app", "1.0.0", KindIndex, &ev)
		msg := d.DenyMessage()
		if d.Verdict != VerdictDeny {
			t.Errorf("%s: %s, want deny (evidence %+v)", name, d.Verdict, ev)
		}
		if len(msg) > 2000 || strings.Contains(msg, huge) {
			t.Errorf("%s: the denial repeats hostile input (%d bytes)", name, len(msg))
		}
	}
	ev := IndexPlatforms(ociIndex(entry(1, ""), attestation(1, "unknown/unknown"), attestation(2, "unknown/unknown")))
	if ev.Uncounted != "1 entry without a platform, 2 attestation manifest" {
		t.Errorf("uncounted: %q", ev.Uncounted)
	}
}

func TestPlatformRuleReadsDockerManifestLists(t *testing.T) {
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:` + strings.Repeat("a", 64) + `","platform":{"architecture":"amd64","os":"linux"}},
{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:` + strings.Repeat("b", 64) + `","platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}`)
	ev := IndexPlatforms(body)
	if len(ev.Platforms) != 2 || ev.Entries != 2 || ev.Uncounted != "" {
		t.Fatalf("%+v", ev)
	}
	if d := platformDecision(t, ActionPull, "prod/app", "1.0.0", KindIndex, &ev); d.Verdict != VerdictAllow {
		t.Fatalf("%s %s", d.Verdict, d.DenyMessage())
	}
}

func TestPlatformRuleManyPlatformsAreListedBriefly(t *testing.T) {
	var es []map[string]any
	for i := range 1000 {
		es = append(es, entry(i, fmt.Sprintf("linux/mips%d", i)))
	}
	ev := IndexPlatforms(ociIndex(es...))
	d := platformDecision(t, ActionPull, "prod/app", "1.0.0", KindIndex, &ev)
	if msg := d.DenyMessage(); d.Verdict != VerdictDeny || !strings.Contains(msg, "and 992 more") || len(msg) > 2000 {
		t.Fatalf("%s (%d bytes):\n%s", d.Verdict, len(msg), msg)
	}
}

func TestPlatformRuleJudgesASinglePlatformImageByItsConfig(t *testing.T) {
	for cfg, want := range map[string]Verdict{
		`{"os":"linux","architecture":"arm64","variant":"v8"}`: VerdictAllow,
		`{"os":"linux","architecture":"arm64"}`:                VerdictAllow,
		`{"os":"linux","architecture":"aarch64"}`:              VerdictAllow,
		`{"os":"linux","architecture":"amd64"}`:                VerdictDeny,
		`{"os":"windows","architecture":"arm64"}`:              VerdictDeny,
		`{"architecture":"arm64"}`:                             VerdictDeny,
		`{"os":"unknown","architecture":"unknown"}`:            VerdictDeny,
		`not json`: VerdictDeny,
	} {
		ev := &PlatformEvidence{}
		if p, ok := ConfigPlatform([]byte(cfg)); ok {
			ev.Platforms = []Platform{p}
		}
		d := platformDecision(t, ActionPull, "prod/app", "1.0.0", KindImage, ev)
		if d.Verdict != want {
			t.Errorf("%s: %s, want %s: %s", cfg, d.Verdict, want, d.DenyMessage())
		}
	}
	ev := &PlatformEvidence{Platforms: []Platform{{OS: "linux", Architecture: "amd64"}}}
	d := platformDecision(t, ActionPull, "prod/app", "1.0.0", KindImage, ev)
	if !strings.Contains(d.DenyMessage(), "the image is for linux/amd64 (its configuration says so); environment prod's nodes run linux/arm64/v8") {
		t.Fatal(d.DenyMessage())
	}
}

func TestPlatformRuleDefersImagesPushedByDigestAndExemptsArtifacts(t *testing.T) {
	// A client pushes an index's platform manifests by digest before the index: they are
	// judged through the index and when pulled, and need no evidence.
	d := platformDecision(t, ActionPush, "prod/app", "", KindImage, nil)
	if d.Verdict != VerdictAllow || d.Results[0].Outcome != OutcomeExempt {
		t.Fatalf("%s %+v", d.Verdict, d.Results)
	}
	// Pulled by digest it is judged.
	amd := &PlatformEvidence{Platforms: []Platform{{OS: "linux", Architecture: "amd64"}}}
	if d := platformDecision(t, ActionPull, "prod/app", "", KindImage, amd); d.Verdict != VerdictDeny {
		t.Fatalf("pull by digest: %s", d.Verdict)
	}
	// An index pushed by digest is judged.
	if d := platformDecision(t, ActionPush, "prod/app", "", KindIndex, &PlatformEvidence{Index: true}); d.Verdict != VerdictDeny {
		t.Fatalf("index by digest: %s", d.Verdict)
	}
	if d := platformDecision(t, ActionPull, "prod/app", "", KindSignature, nil); d.Verdict != VerdictAllow || d.Results[0].Outcome != OutcomeExempt {
		t.Fatalf("signature: %s %+v", d.Verdict, d.Results)
	}
	// Without evidence the rule fails: the gate's fail mode then decides.
	if d := platformDecision(t, ActionPull, "prod/app", "1.0.0", KindImage, nil); d.Verdict != VerdictDeny {
		t.Fatalf("no evidence: %s", d.Verdict)
	}
}

func TestPlatformRuleModesAndNeeds(t *testing.T) {
	p := mustParse(t, `version: 1
environments:
  - {name: prod, repositories: ["prod/**"], platforms: [linux/arm64/v8, linux/amd64]}
  - {name: dev, repositories: ["dev/**"]}
rules:
  - {id: hw, type: platform, mode: block, enforceFrom: 2099-01-01}
`)
	ev := &PlatformEvidence{Index: true, Platforms: []Platform{{OS: "linux", Architecture: "s390x"}}, Entries: 1}
	d := p.Evaluate(Input{Action: ActionPush, Repository: "prod/app", Tag: "1", Kind: KindIndex, Platform: ev}, today)
	if d.Verdict != VerdictWarn || !strings.Contains(d.Warnings()[0].Message(), "linux/arm64/v8, linux/amd64") {
		t.Fatalf("%s %+v", d.Verdict, d.Results)
	}
	if !p.Needs(ActionPull, "prod/app", "").Platform || p.Needs(ActionPull, "dev/app", "").Platform || p.Needs(ActionDelete, "prod/app", "").Platform {
		t.Fatal("needs: platform evidence only where a platform rule judges")
	}
	if got := p.Environments()[0].Platforms; len(got) != 2 || got[0] != "linux/arm64/v8" {
		t.Fatalf("environments: %v", got)
	}
}

// FuzzIndexPlatforms feeds hostile bodies to the index and configuration parsers: what
// counts is always a valid platform, and findings stay short.
func FuzzIndexPlatforms(f *testing.F) {
	f.Add(ociIndex(entry(1, "linux/amd64"), attestation(1, "unknown/unknown")))
	f.Add([]byte(`{"manifests":[{"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}`))
	f.Add([]byte(`{"manifests":[{"platform":null},{"platform":[]},{}]}`))
	f.Add([]byte(`{"os":"linux","architecture":"arm64","variant":"v8"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev := IndexPlatforms(body)
		if !ev.Index || len(ev.Platforms) > ev.Entries {
			t.Fatalf("evidence %+v", ev)
		}
		for _, p := range ev.Platforms {
			if !platformToken.MatchString(p.OS) || !platformToken.MatchString(p.Architecture) || p.OS == "unknown" || p.Architecture == "unknown" {
				t.Fatalf("counted %q", p)
			}
		}
		if p, ok := ConfigPlatform(body); ok && (!platformToken.MatchString(p.OS) || !platformToken.MatchString(p.Architecture) ||
			p.Variant != "" && !platformToken.MatchString(p.Variant) || p.OS == "unknown" || p.Architecture == "unknown") {
			t.Fatalf("configuration platform %q", p)
		}
		nodes := []Platform{{OS: "linux", Architecture: "arm64", Variant: "v8"}}
		r := rule{Rule: Rule{ID: "x", Type: TypePlatform}}
		_, finding, _ := r.evaluatePlatform(Input{Platform: &ev}, "prod", nodes)
		if len(finding) > 2000 {
			t.Fatalf("finding of %d bytes", len(finding))
		}
	})
}

// FuzzParsePlatform: what the policy parser accepts prints back as written and runs on
// itself.
func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/arm64/v8", "linux/amd64", "linux/arm/v7", "windows/amd64", "linux//", "a/b/c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePlatform(%q) = %q", s, p)
		}
		if !runsOn(p, p) {
			t.Fatalf("%q does not run itself", s)
		}
	})
}
