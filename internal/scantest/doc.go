// Package scantest builds real scan inputs for tests: a Go program with known advisories, layers, and a database of real Go advisories.
package scantest
