// Package harbor speaks the Harbor Pluggable Scanner Adapter API (spec v1.2, base /api/v1)
// both ways: Server serves the built-in scanner as an adapter Harbor can plug in, and
// Client drives any adapter (Trivy's, Aqua's, ...) and maps its report to the built-in
// scanner's findings.
package harbor
