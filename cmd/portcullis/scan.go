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
	"strings"

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
A manifest whose media type and shape disagree (an image manifest carrying "manifests",
an index carrying "config" or "layers") is refused, not scanned. Text from the image
(paths, package names, excerpts) is shown in the table with control characters escaped
(\x1b, \u202e). A layer that could not be read to the end (a limit, a format the analyzer
cannot read) makes the scan incomplete: the table says INCOMPLETE, JSON has incomplete and
each layer's reason, SARIF marks the run's execution unsuccessful with a notification.
Exit status: 0 when scanned; 1 with --fail-on when a finding reaches that severity, with
--fail-on-secrets when a secret of medium or high confidence is found, or with either when
a layer's content is not the diffID the image configuration claims; 3 with --fail-on or
--fail-on-secrets when nothing failed but the scan is incomplete (or, for --fail-on, the
image's operating system is unknown, so its OS packages were not checked): what was not
read may hold what the flag looks for; 1 when the image cannot be read or scanned; 2 on
usage errors.

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
	// Incomplete says a layer could not be read to the end; Layers says which and why.
	Incomplete bool           `json:"incomplete"`
	Layers     []scannedLayer `json:"layers"`

	// packages and distro are what the layers hold, read only for an SBOM.
	packages []inventory.Package
	distro   layer.Distro
}

// scannedLayer is one layer of a scanned manifest and whether it was read to the end.
type scannedLayer struct {
	Number     int    `json:"number"`
	Blob       string `json:"blob"`
	DiffID     string `json:"diffID"`
	Incomplete bool   `json:"incomplete"`
	Reason     string `json:"reason,omitempty"`
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
	failOn := fs.String("fail-on", "", "exit 1 when a finding is at least this severe: critical, high, medium, low (3 when none is but the scan is incomplete)")
	failOnSecrets := fs.Bool("fail-on-secrets", false, "exit 1 when a secret of medium or high confidence is found (in the configuration or a layer file; 3 when none is but a layer could not be read to the end)")
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
	incomplete := false
	for _, t := range targets {
		incomplete = incomplete || t.Incomplete
	}
	switch *output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"image": fs.Arg(0), "digest": digest, "incomplete": incomplete, "manifests": targets})
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
	return scanExit(stderr, targets, *failOn, threshold, *failOnSecrets)
}

// Exit statuses of portcullis scan besides 0 and usage errors (2).
const (
	// exitFailed: a finding or secret the flags fail on, a layer that is not what the
	// configuration claims, or an image that could not be read or scanned.
	exitFailed = 1
	// exitIncomplete: with --fail-on or --fail-on-secrets, nothing failed, but not
	// everything could be checked.
	exitIncomplete = 3
)

// scanExit is the exit status of a scan of targets with the --fail-on flags given
// (failOn "" when not given): exitFailed for what the flags fail on, else exitIncomplete
// when they could not rule it out (saying why on stderr), else 0.
func scanExit(stderr io.Writer, targets []scanTarget, failOn string, threshold match.Severity, failOnSecrets bool) int {
	if failOn == "" && !failOnSecrets {
		return 0
	}
	var unchecked []string
	for _, t := range targets {
		where := t.Digest
		if t.Platform != "" {
			where = t.Platform + " (" + t.Digest + ")"
		}
		if failOn != "" {
			for _, f := range t.Report.Findings {
				if f.Severity >= threshold || f.Severity == match.SeverityUnknown {
					return exitFailed
				}
			}
		}
		for _, s := range t.Secrets {
			if failOnSecrets && s.Confidence != secrets.ConfidenceLow {
				return exitFailed
			}
		}
		for _, m := range t.Report.Mismatched {
			fmt.Fprintf(stderr, "portcullis scan: %s: %s\n", printable(where), printable(m.String()))
		}
		if len(t.Report.Mismatched) > 0 {
			return exitFailed
		}
		if t.Incomplete {
			unchecked = append(unchecked, where+": "+strings.Join(t.Report.Reasons, "; "))
		}
		if failOn != "" && t.Report.OSUnknown {
			unchecked = append(unchecked, where+": the operating system is unknown ("+t.Report.OSUnknownReason+")")
		}
	}
	if len(unchecked) > 0 {
		fmt.Fprintf(stderr, "portcullis scan: the scan is incomplete, so it cannot say there is nothing to fail on (exit %d): %s\n", exitIncomplete, printable(strings.Join(unchecked, "; ")))
		return exitIncomplete
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
	body, mediaType, err := reader.Manifest(ctx, repo, digest)
	if err != nil {
		return nil, err
	}
	shape, err := gate.ClassifyManifest(body, mediaType)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
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
	if shape == gate.ShapeIndex {
		if err := json.Unmarshal(body, &idx); err != nil {
			return nil, fmt.Errorf("index %s: %w", digest, err)
		}
		var out []scanTarget
		for _, m := range idx.Manifests {
			child, childType, err := reader.Manifest(ctx, repo, m.Digest)
			if err != nil {
				return nil, err
			}
			switch s, err := gate.ClassifyManifest(child, childType); {
			case err != nil:
				return nil, fmt.Errorf("manifest %s of index %s: %w", m.Digest, digest, err)
			case s != gate.ShapeImage:
				return nil, fmt.Errorf("manifest %s of index %s is itself an index: nested indexes are not scanned", m.Digest, digest)
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
	var blobs struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	_ = json.Unmarshal(manifest, &blobs)
	t.Layers = []scannedLayer{}
	for i, l := range layers.Layers {
		t.SecretsOmitted += l.SecretsOmitted
		sl := scannedLayer{Number: i + 1, DiffID: l.DiffID, Incomplete: l.Incomplete, Reason: l.IncompleteReason}
		if i < len(blobs.Layers) {
			sl.Blob = blobs.Layers[i].Digest
		}
		t.Layers = append(t.Layers, sl)
		t.Incomplete = t.Incomplete || l.Incomplete
	}
	t.Incomplete = t.Incomplete || rep.Incomplete
	return t, nil
}
