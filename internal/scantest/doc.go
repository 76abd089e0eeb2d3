// Package scantest builds real scan inputs for tests: a Go program with known advisories.
package scantest
