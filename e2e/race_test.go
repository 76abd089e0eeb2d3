//go:build race

package e2e

// raceEnabled reports whether the tests run with -race; the gateway is then built with it too.
const raceEnabled = true
