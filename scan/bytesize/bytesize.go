// Package bytesize formats byte counts for people, in binary units: "8 GiB", "1.5 MiB".
package bytesize

import "strconv"

var units = []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// Format returns n in the largest binary unit it reaches, with one decimal
// place unless n is a whole number of that unit: 512 → "512 bytes",
// 8<<30 → "8 GiB", 1536<<10 → "1.5 MiB".
func Format(n int64) string {
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	u := 0
	v := float64(n)
	whole := true
	for (v >= 1024 || v <= -1024) && u < len(units)-1 {
		if n%1024 != 0 {
			whole = false
		}
		n /= 1024
		v /= 1024
		u++
	}
	if whole {
		return strconv.FormatInt(n, 10) + " " + units[u]
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[u]
}
