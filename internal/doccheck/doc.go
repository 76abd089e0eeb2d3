// Package doccheck holds the tests that keep README.md and docs/*.md honest: every example
// parses as what it claims to be, and every relative link leads somewhere.
package doccheck
