// Package bytesize formats byte counts for people, in binary units: "8 GiB", "1.5 MiB".
package bytesize

import (
	"math"
	"strconv"
)

var units = []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// Format returns n in the largest binary unit it reaches, with one decimal
// place unless n is a whole number of that unit: 512 → "512 bytes",
// 8<<30 → "8 GiB", 1536<<10 → "1.5 MiB", 1<<20 - 1 → "1.0 MiB".
func Format(n int64) string {
	if -1024 < n && n < 1024 {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	v, u := float64(n), 0
	for math.Abs(v) >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64) + " " + units[u]
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if (s == "1024.0" || s == "-1024.0") && u < len(units)-1 {
		v /= 1024
		u++
		s = strconv.FormatFloat(v, 'f', 1, 64)
	}
	return s + " " + units[u]
}
