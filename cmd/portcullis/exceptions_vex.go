package main

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
)

const exceptionsVEXHelp = `Usage: portcullis exceptions vex --policy FILE [--at DATE] [--author NAME] [--registry HOST] [--id IRI]

Writes one OpenVEX v0.2.0 document (JSON, on stdout) with the statements of the
exceptions in force at --at (default: now) that carry vex, so that scanners and
other tools honour the decisions the gateway applies. Expired exceptions, those
not yet valid and those without vex are left out. When none is left, nothing
is written (OpenVEX requires a statement) and stderr says so.

Each vulnerability an exception names gives one statement: its status,
justification, impact_statement and action_statement come from the exception's
vex (an affected statement without an action uses the exception's closure), its
timestamp is the exception's created day, and status_notes name the exception.
The product is the exception's repository as a pkg:oci purl: with the digest as
version and a sha-256 (or sha-512) hash when the scope names one, a tag
qualifier when it names a tag, and always a repository_url qualifier
(--registry/REPOSITORY, or REPOSITORY alone without --registry). Statements are
sorted by vulnerability, product and exception, so the same policy and --at give
the same document; its @id is derived from its content unless --id is given.
The author defaults to the exceptions' approvers.
Exit status: 0 when written, 1 when the policy is invalid, 2 on usage errors.

Example:
  portcullis exceptions vex --policy deploy/policy.yaml --registry registry.example --author "Security <security@example.com>" > portcullis.openvex.json

Flags:
`

// OpenVEX document constants.
const (
	openVEXContext = "https://openvex.dev/ns/v0.2.0"
	// openVEXPublicIDs is the shared namespace OpenVEX offers for document IRIs.
	openVEXPublicIDs = "https://openvex.dev/docs/public/vex-"
	vexTooling       = "portcullis exceptions vex"
)

// vexDocument is an OpenVEX v0.2.0 document.
type vexDocument struct {
	Context    string         `json:"@context"`
	ID         string         `json:"@id"`
	Author     string         `json:"author"`
	Timestamp  string         `json:"timestamp"`
	Version    int            `json:"version"`
	Tooling    string         `json:"tooling"`
	Statements []vexStatement `json:"statements"`
}

// vexStatement is one OpenVEX statement.
type vexStatement struct {
	Vulnerability   vexVulnerability `json:"vulnerability"`
	Timestamp       string           `json:"timestamp"`
	Products        []vexProduct     `json:"products"`
	Status          string           `json:"status"`
	StatusNotes     string           `json:"status_notes,omitempty"`
	Justification   string           `json:"justification,omitempty"`
	ImpactStatement string           `json:"impact_statement,omitempty"`
	ActionStatement string           `json:"action_statement,omitempty"`
}

// vexVulnerability names a vulnerability. Aliases are left out: the policy does not know
// which of the ids an exception lists name the same flaw, so each gets its own statement.
type vexVulnerability struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
}

// vexProduct is an OpenVEX product: a purl as @id and identifier, and the manifest digest
// as a hash when known.
type vexProduct struct {
	ID          string            `json:"@id"`
	Identifiers map[string]string `json:"identifiers"`
	Hashes      map[string]string `json:"hashes,omitempty"`
}

// runExceptionsVEX runs "portcullis exceptions vex".
func runExceptionsVEX(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis exceptions vex", flag.ContinueOnError)
	file := fs.String("policy", "", "policy file (required)")
	atFlag := fs.String("at", "", "the exceptions in force at this moment, YYYY-MM-DD (UTC) or RFC 3339; also the document's timestamp (default: now)")
	author := fs.String("author", "", "the document's author, a person or organisation (default: the exceptions' approvers)")
	registry := fs.String("registry", "", "registry host (and port) clients pull through, for the purls' repository_url, e.g. registry.example")
	id := fs.String("id", "", "the document's IRI (default: "+openVEXPublicIDs+"<SHA-256 of its content>)")
	pos, status, ok := policyFlags(fs, exceptionsVEXHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	usageErr := exceptionsUsageErr("vex", stderr)
	if msg := registryProblem(*registry); msg != "" {
		return usageErr("--registry: %s", msg)
	}
	if _, err := exceptionsNow(*atFlag); err != nil {
		return usageErr("--at: %v", err)
	}
	at, p, status := exceptionsSetup("vex", *file, *atFlag, "table", pos, stderr)
	if p == nil {
		return status
	}
	doc := buildVEX(p.Exceptions(), at, *author, *registry)
	if *id != "" {
		doc.ID = *id
	}
	if len(doc.Statements) == 0 {
		// OpenVEX requires at least one statement: write nothing rather than an invalid document.
		fmt.Fprintf(stderr, "portcullis exceptions vex: no exception of %s in force on %s carries vex; nothing written\n", *file, at.UTC().Format(time.RFC3339))
		return 0
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // purls keep their '&'
	if err := enc.Encode(doc); err != nil {
		fmt.Fprintf(stderr, "portcullis exceptions vex: %v\n", err)
		return 1
	}
	return 0
}

// registryProblem says why host cannot be a --registry value, or "".
func registryProblem(host string) string {
	if strings.ContainsAny(host, "/?#@ \t") || strings.Contains(host, "://") {
		return fmt.Sprintf("want a host name with an optional port, such as registry.example or registry.example:5000, got %q", host)
	}
	return ""
}

// buildVEX makes the OpenVEX document of the exceptions in force at at that carry vex.
func buildVEX(es []policy.Exception, at time.Time, author, registry string) vexDocument {
	doc := vexDocument{
		Context:    openVEXContext,
		Author:     author,
		Timestamp:  at.UTC().Format(time.RFC3339),
		Version:    1,
		Tooling:    vexTooling,
		Statements: []vexStatement{},
	}
	type keyed struct {
		st        vexStatement
		exception string
	}
	var all []keyed
	var approvers []string
	for _, e := range es {
		if e.VEX == nil || e.Status(at).State != policy.ExceptionActive {
			continue
		}
		if !slices.Contains(approvers, e.ApprovedBy) {
			approvers = append(approvers, e.ApprovedBy)
		}
		product := ociProduct(e.Scope, registry)
		for _, v := range e.Scope.Vulnerabilities {
			st := vexStatement{
				Vulnerability:   vexVulnerability{Name: v},
				Timestamp:       e.Created.UTC().Format(time.RFC3339),
				Products:        []vexProduct{product},
				Status:          e.VEX.Status,
				StatusNotes:     statusNotes(e),
				Justification:   e.VEX.Justification,
				ImpactStatement: e.VEX.Impact,
				ActionStatement: e.VEX.Action,
			}
			if st.ActionStatement == "" && st.Status == policy.VEXAffected {
				st.ActionStatement = e.Closure
			}
			all = append(all, keyed{st, e.ID})
		}
	}
	slices.SortStableFunc(all, func(a, b keyed) int {
		return cmp.Or(
			cmp.Compare(a.st.Vulnerability.Name, b.st.Vulnerability.Name),
			cmp.Compare(a.st.Products[0].ID, b.st.Products[0].ID),
			cmp.Compare(a.exception, b.exception))
	})
	for _, k := range all {
		doc.Statements = append(doc.Statements, k.st)
	}
	if doc.Author == "" {
		slices.Sort(approvers)
		doc.Author = strings.Join(approvers, ", ")
	}
	// The IRI names the content: the same statements, author and time give the same @id.
	content, _ := json.Marshal(doc)
	sum := sha256.Sum256(content)
	doc.ID = openVEXPublicIDs + hex.EncodeToString(sum[:])
	return doc
}

// statusNotes name the exception a statement comes from, for whoever reads the document.
func statusNotes(e policy.Exception) string {
	s := fmt.Sprintf("portcullis exception %s (owner %s, approved by %s, in force %s to %s",
		e.ID, e.Owner, e.ApprovedBy, e.Created.Format(time.DateOnly), e.Expires.Format(time.DateOnly))
	if e.Ticket != "" {
		s += ", ticket " + e.Ticket
	}
	s += ")"
	if e.Scope.Package != "" {
		s += "; package " + e.Scope.Package
	}
	return s
}

// ociProduct is the product of an exception's scope (one repository: the policy refuses
// vex on a glob scope): a pkg:oci purl named after the repository's last segment, with the
// digest as version and hash when the scope names one, a tag qualifier when it names a tag,
// and the repository_url qualifier always.
func ociProduct(s policy.ExceptionScope, registry string) vexProduct {
	purl := "pkg:oci/" + purlEscape(strings.ToLower(path.Base(s.Repository)))
	var hashes map[string]string
	if algo, hexDigest, ok := strings.Cut(s.Digest, ":"); ok {
		purl += "@" + purlEscape(algo) + "%3A" + purlEscape(hexDigest)
		hashes = map[string]string{strings.Replace(algo, "sha", "sha-", 1): hexDigest}
	}
	repoURL := strings.ToLower(s.Repository)
	if registry != "" {
		repoURL = strings.ToLower(registry) + "/" + repoURL
	}
	purl += "?repository_url=" + purlEscape(repoURL)
	if s.Tag != "" {
		purl += "&tag=" + purlEscape(s.Tag)
	}
	return vexProduct{ID: purl, Identifiers: map[string]string{"purl": purl}, Hashes: hashes}
}

// purlEscape percent-encodes what a purl component must not hold as is; repository paths,
// hosts with ports and tags keep their '/', ':', '.', '-' and '_', as in the purl
// specification's own pkg:oci examples.
func purlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '-', c == '_', c == '~', c == '/', c == ':':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
