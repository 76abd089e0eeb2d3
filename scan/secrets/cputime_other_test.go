//go:build !unix

package secrets

import "time"

// cpuTime is not measured here: benchmarks report wall-clock ns/byte only.
func cpuTime() time.Duration { return 0 }
