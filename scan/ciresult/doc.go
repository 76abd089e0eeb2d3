// Package ciresult reads the vulnerability scan results CI attaches to an image as a
// signed attestation (cosign's vuln predicate, in-toto's vulns v0.2) and maps the findings
// of Trivy, Grype, Prisma Cloud twistcli and Sysdig reports to the built-in scanner's.
package ciresult
