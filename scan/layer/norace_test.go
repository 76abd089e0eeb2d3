//go:build !race

package layer_test

// raceEnabled is set when the tests run under the race detector, which makes
// the heaviest checks too slow to run.
const raceEnabled = false
