// Package mirror carries images to an air-gapped site: it reads mirror files, collects the
// images they name into a signed, chunked bundle, and verifies such a bundle before anything
// reads it.
package mirror
