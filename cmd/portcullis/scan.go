package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/scan/imageconfig"
	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/layer"
	"github.com/portcullis-dev/portcullis/scan/match"
	"github.com/portcullis-dev/portcullis/scan/ocilayout"
	"github.com/portcullis-dev/portcullis/scan/secrets"
	"github.com/portcullis-dev/portcullis/upstream"
)

const scanHelp = `Usage: portcullis scan [flags] IMAGE

Scans an image offline, as the gateway scans pushes: its packages (OS and language)
against the vulnerability database, its configuration (root user, secrets in Env,
labels and history) and the files of every layer for secrets (private keys, tokens,
passwords in URLs; each named by file, line and layer, shown redacted, including files
a later layer deletes). IMAGE is a registry reference (registry.example/team/app:1.0.0 or
...@sha256:...) or an OCI image layout (oci:DIR or oci:DIR:TAG). An index is scanned
platform by platform. --output cyclonedx writes a CycloneDX 1.6 SBOM: the image, every
package found (with its purl, layer and file) and the vulnerabilities; an index gives one
SBOM with each platform's packages nested under that platform's manifest.
Exit status: 0 when scanned (1 with --fail-on when a finding reaches that severity, or
with --fail-on-secrets when a secret of medium or high confidence is found), 1 when the
image cannot be read or scanned, 2 on usage errors.

Example:
  portcullis scan --db data/vulndb --output sarif --fail-on critical registry.example/team/app:1.4.2 > scan.sarif

Flags:
`

// scanTarget is one manifest scanned.
type scanTarget struct {
	Platform   string      `json:"platform,omitempty"`
	Digest     string      `json:"digest"`
	Report     gate.Report `json:"report"`
	RunsAsRoot bool        `json:"runsAsRoot"`
	RootReason string      `json:"rootReason,omitempty"`
	// Secrets are those of the configuration, then those of the layers' files,
	// lowest layer first.
	Secrets []scannedSecret `json:"secrets,omitempty"`
	// SecretsOmitted counts secrets in layer files past the most one layer's
	// analysis lists (layer.MaxSecrets).
	SecretsOmitted int `json:"secretsOmitted,omitempty"`

	// packages and distro are what the layers hold, read only for an SBOM.
	packages []inventory.Package
	distro   layer.Distro
}

// scannedSecret is one secret found, redacted, as the gate reports it (type, location,
// excerpt, and for a layer file the layer's diffID and number and whether a later layer
// deletes it), with the file's path and line apart, and how sure the detector is.
type scannedSecret struct {
	policy.SecretFinding
	Path       string             `json:"path,omitempty"`
	Line       int                `json:"line,omitempty"`
	Confidence secrets.Confidence `json:"confidence"`
	Note       string             `json:"note,omitempty"`
}

// describe says what and where the secret is, for people:
// "private-key in /app/id_rsa:1 in layer 2 (sha256:0123456789ab…) (-----BEGIN …) [high]".
func (s scannedSecret) describe() string {
	d := fmt.Sprintf("%s in %s (%s) [%s", s.Type, s.Where(), s.Excerpt, s.Confidence)
	if s.Note != "" {
		d += ": " + s.Note
	}
	return d + "]"
}

// scanReader is what the scan reads an image through: a registry or a layout.
type scanReader interface {
	gate.LayerReader
	Manifest(ctx context.Context, repo, ref string) ([]byte, string, error)
}

func runScan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, scanHelp); fs.PrintDefaults() }
	db := fs.String("db", defaultDBDir(os.Getenv), "vulnerability database directory (see portcullis db import)")
	output := fs.String("output", "table", "table, json, sarif or cyclonedx")
	failOn := fs.String("fail-on", "", "exit 1 when a finding is at least this severe: critical, high, medium, low")
	failOnSecrets := fs.Bool("fail-on-secrets", false, "exit 1 when a secret of medium or high confidence is found (in the configuration or a layer file)")
	insecure := fs.Bool("insecure", false, "reach the registry over plain HTTP")
	user := fs.String("username", os.Getenv("PORTCULLIS_SCAN_USERNAME"), "registry user (env PORTCULLIS_SCAN_USERNAME)")
	password := fs.String("password", os.Getenv("PORTCULLIS_SCAN_PASSWORD"), "registry password (env PORTCULLIS_SCAN_PASSWORD)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 || !validScanOutput(*output) {
		fs.Usage()
		return 2
	}
	threshold := match.SeverityUnknown
	if *failOn != "" {
		if threshold = match.ParseSeverity(*failOn); threshold == match.SeverityUnknown {
			fmt.Fprintf(stderr, "portcullis scan: --fail-on %q: want critical, high, medium or low\n", *failOn)
			return 2
		}
	}
	ctx := context.Background()
	reader, repo, digest, err := openScanTarget(ctx, fs.Arg(0), *insecure, *user, *password)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis scan: %v\n", err)
		return 1
	}
	targets, err := scanImage(ctx, reader, *db, repo, digest, *output == "cyclonedx")
	if err != nil {
		fmt.Fprintf(stderr, "portcullis scan: %v\n", err)
		return 1
	}
	switch *output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"image": fs.Arg(0), "digest": digest, "manifests": targets})
	case "sarif":
		_ = json.NewEncoder(stdout).Encode(sarifOf(fs.Arg(0), targets))
	case "cyclonedx":
		if err := writeCycloneDX(stdout, fs.Arg(0), digest, targets); err != nil {
			fmt.Fprintf(stderr, "portcullis scan: writing the SBOM: %v\n", err)
			return 1
		}
	default:
		printScanTable(stdout, fs.Arg(0), digest, targets)
	}
	for _, t := range targets {
		for _, f := range t.Report.Findings {
			if *failOn != "" && (f.Severity >= threshold || f.Severity == match.SeverityUnknown) {
				return 1
			}
		}
		for _, s := range t.Secrets {
			if *failOnSecrets && s.Confidence != secrets.ConfidenceLow {
				return 1
			}
		}
	}
	return 0
}

func validScanOutput(o string) bool {
	switch o {
	case "table", "json", "sarif", "cyclonedx":
		return true
	}
	return false
}

// openScanTarget resolves IMAGE to a reader, repository and manifest digest.
func openScanTarget(ctx context.Context, ref string, insecure bool, user, password string) (scanReader, string, string, error) {
	if rest, ok := strings.CutPrefix(ref, "oci:"); ok {
		dir, tag := rest, ""
		if i := strings.LastIndex(rest, ":"); i > 0 {
			dir, tag = rest[:i], rest[i+1:]
		}
		l, err := ocilayout.Open(dir)
		if err != nil {
			return nil, "", "", err
		}
		d, err := l.Resolve(tag)
		return l, "layout", d, err
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, "", "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	c, err := upstream.New(r.Context().Registry.Scheme()+"://"+r.Context().RegistryStr(), http.DefaultTransport)
	if err != nil {
		return nil, "", "", err
	}
	if user != "" {
		c = c.WithServiceAccount(user, password)
	}
	repo := r.Context().RepositoryStr()
	if d, ok := r.(name.Digest); ok {
		return c, repo, d.DigestStr(), nil
	}
	desc, err := c.Head(ctx, repo, r.Identifier(), "")
	if err != nil {
		return nil, "", "", err
	}
	return c, repo, desc.Digest, nil
}

// scanImage scans the manifest digest, or each platform manifest of an index; with
// withPackages it also keeps each manifest's packages and distro (for an SBOM).
func scanImage(ctx context.Context, reader scanReader, dbDir, repo, digest string, withPackages bool) ([]scanTarget, error) {
	scanner := gate.NewScanner(reader, cache.NewFlight(cache.NewMemory(256<<20)), dbDir)
	body, _, err := reader.Manifest(ctx, repo, digest)
	if err != nil {
		return nil, err
	}
	var idx struct {
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if json.Unmarshal(body, &idx) == nil && idx.Manifests != nil {
		var out []scanTarget
		for _, m := range idx.Manifests {
			child, _, err := reader.Manifest(ctx, repo, m.Digest)
			if err != nil {
				return nil, err
			}
			t, err := scanOne(ctx, scanner, reader, repo, m.Digest, child, withPackages)
			if err != nil {
				return nil, err
			}
			if m.Platform != nil {
				t.Platform = m.Platform.OS + "/" + m.Platform.Architecture
			}
			out = append(out, t)
		}
		return out, nil
	}
	t, err := scanOne(ctx, scanner, reader, repo, digest, body, withPackages)
	return []scanTarget{t}, err
}

func scanOne(ctx context.Context, scanner *gate.Scanner, reader scanReader, repo, digest string, manifest []byte, withPackages bool) (scanTarget, error) {
	rep, err := scanner.Scan(ctx, repo, digest, manifest)
	if err != nil {
		return scanTarget{}, err
	}
	t := scanTarget{Digest: digest, Report: rep}
	// The layers were analysed by Scan just now, with the secret search; this reads
	// them from its cache.
	layers, err := scanner.Layers(ctx, repo, manifest)
	if err != nil {
		return t, err
	}
	if withPackages {
		img := layer.Squash(layers.Layers)
		t.packages, t.distro = img.Packages, img.Distro
	}
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if json.Unmarshal(manifest, &m) == nil && m.Config.Digest != "" {
		blob, err := reader.Blob(ctx, repo, m.Config.Digest, imageconfig.MaxConfigBytes)
		if err != nil {
			return t, err
		}
		cfg, err := imageconfig.ParseConfig(blob)
		if err != nil {
			return t, err
		}
		t.RunsAsRoot, t.RootReason = imageconfig.RunsAsRoot(cfg)
		for _, s := range imageconfig.SecretsInConfig(cfg) {
			t.Secrets = append(t.Secrets, scannedSecret{
				SecretFinding: policy.SecretFinding{Type: s.Type, Location: s.Source, Excerpt: s.Redacted},
				Confidence:    s.Confidence, Note: s.Note,
			})
		}
	}
	for _, s := range layer.ImageSecrets(layers.Layers) {
		t.Secrets = append(t.Secrets, scannedSecret{
			SecretFinding: policy.SecretFinding{Type: s.Type, Location: s.Location(), Excerpt: s.Redacted,
				Layer: s.Layer, LayerNumber: s.Index + 1, Deleted: s.Hidden},
			Path: s.Path, Line: s.Line, Confidence: s.Confidence, Note: s.Note,
		})
	}
	for _, l := range layers.Layers {
		t.SecretsOmitted += l.SecretsOmitted
	}
	return t, nil
}

func printScanTable(w io.Writer, ref, digest string, targets []scanTarget) {
	fmt.Fprintf(w, "image:    %s\ndigest:   %s\n", ref, digest)
	for _, t := range targets {
		if t.Platform != "" {
			fmt.Fprintf(w, "\nplatform: %s (%s)\n", t.Platform, t.Digest)
		}
		r := t.Report
		fmt.Fprintf(w, "packages: %d (%d not checkable), database %s\n", r.Packages, r.Unchecked, r.DBRevision)
		if r.Incomplete {
			fmt.Fprintf(w, "INCOMPLETE: %s\n", strings.Join(r.Reasons, "; "))
		}
		if t.RunsAsRoot {
			fmt.Fprintf(w, "runs as root: %s\n", t.RootReason)
		}
		for _, s := range t.Secrets {
			fmt.Fprintf(w, "secret: %s\n", s.describe())
		}
		if t.SecretsOmitted > 0 {
			fmt.Fprintf(w, "secrets: %d more in layer files, not listed\n", t.SecretsOmitted)
		}
		findings := append([]match.Finding(nil), r.Findings...)
		sort.SliceStable(findings, func(i, j int) bool { return findings[i].Severity > findings[j].Severity })
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "\nSEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED")
		for _, f := range findings {
			fixed := f.Fixed
			if fixed == "" {
				fixed = "(no fix)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Severity, f.ID, f.Package.Name, f.Package.Version, fixed)
		}
		tw.Flush()
		fmt.Fprintf(w, "%d finding(s)\n", len(findings))
	}
}

// sarifOf renders findings as SARIF 2.1.0 for CI code-scanning views: a result per
// vulnerability, and one per secret with only the redacted excerpt in its message: a secret
// in a layer file is located at the file and line, with the layer in its properties; one in
// the configuration (Env, labels, history) at a logical location naming where.
func sarifOf(ref string, targets []scanTarget) map[string]any {
	rules := map[string]map[string]any{}
	var results []map[string]any
	for _, t := range targets {
		for _, f := range t.Report.Findings {
			if _, ok := rules[f.ID]; !ok {
				rules[f.ID] = map[string]any{"id": f.ID, "shortDescription": map[string]string{"text": firstNonEmpty(f.Summary, f.ID)},
					"properties": map[string]any{"aliases": f.Aliases, "severity": f.Severity.String()}}
			}
			msg := fmt.Sprintf("%s %s in %s is affected by %s", f.Package.Name, f.Package.Version, ref, f.ID)
			if f.Fixed != "" {
				msg += "; fixed in " + f.Fixed
			}
			uri := f.Package.Path
			if uri == "" {
				uri = f.Package.Name
			}
			results = append(results, map[string]any{
				"ruleId":  f.ID,
				"level":   sarifLevel(f.Severity),
				"message": map[string]string{"text": msg},
				"locations": []any{map[string]any{"physicalLocation": map[string]any{
					"artifactLocation": map[string]string{"uri": strings.TrimPrefix(uri, "/")}}}},
			})
		}
		for _, s := range t.Secrets {
			id := "secret/" + s.Type
			if _, ok := rules[id]; !ok {
				rules[id] = map[string]any{"id": id, "shortDescription": map[string]string{"text": "Secret in the image: " + s.Type},
					"properties": map[string]any{"category": "secret"}}
			}
			msg := fmt.Sprintf("%s in %s: %s (%s)", s.Type, ref, s.Where(), s.Excerpt)
			if s.Note != "" {
				msg += "; " + s.Note
			}
			props := map[string]any{"layer": s.Layer, "layerNumber": s.LayerNumber, "deleted": s.Deleted, "confidence": s.Confidence}
			if t.Platform != "" {
				props["platform"] = t.Platform
			}
			// A layer file is a physical location; the configuration (Env, a label, a
			// history entry) only a logical one.
			loc := map[string]any{"logicalLocations": []any{map[string]string{"fullyQualifiedName": s.Location, "kind": "resource"}}}
			if s.Path != "" {
				loc = map[string]any{"physicalLocation": map[string]any{
					"artifactLocation": map[string]string{"uri": strings.TrimPrefix(s.Path, "/")},
					"region":           map[string]int{"startLine": s.Line},
				}}
			}
			results = append(results, map[string]any{
				"ruleId":     id,
				"level":      sarifSecretLevel(s.Confidence),
				"message":    map[string]string{"text": msg},
				"locations":  []any{loc},
				"properties": props,
			})
		}
	}
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ruleList := make([]any, len(ids))
	for i, id := range ids {
		ruleList[i] = rules[id]
	}
	if results == nil {
		results = []map[string]any{}
	}
	return map[string]any{
		"version": "2.1.0",
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"runs": []any{map[string]any{
			"tool":    map[string]any{"driver": map[string]any{"name": "portcullis", "version": version, "rules": ruleList}},
			"results": results,
		}},
	}
}

func sarifLevel(s match.Severity) string {
	switch {
	case s >= match.SeverityHigh || s == match.SeverityUnknown:
		return "error"
	case s == match.SeverityMedium:
		return "warning"
	}
	return "note"
}

// sarifSecretLevel maps a detector's confidence to a SARIF level.
func sarifSecretLevel(c secrets.Confidence) string {
	switch c {
	case secrets.ConfidenceHigh:
		return "error"
	case secrets.ConfidenceMedium:
		return "warning"
	}
	return "note"
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
