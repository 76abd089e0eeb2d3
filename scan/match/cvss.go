package match

import (
	"errors"
	"fmt"
	"math"
	"strings"

	gocvss40 "github.com/pandatix/go-cvss/40"
)

var cvss3Weights = map[string]map[string]float64{
	"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
	"AC": {"L": 0.77, "H": 0.44},
	"PR": {"N": 0.85, "L": 0.62, "H": 0.27},
	"UI": {"N": 0.85, "R": 0.62},
	"S":  {"U": 0, "C": 1},
	"C":  {"H": 0.56, "L": 0.22, "N": 0},
	"I":  {"H": 0.56, "L": 0.22, "N": 0},
	"A":  {"H": 0.56, "L": 0.22, "N": 0},
}

// CVSS3BaseScore computes the base score of a CVSS v3.0 or v3.1 vector such
// as "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" with the CVSS 3.1 base
// formula. Temporal and environmental metrics in the vector are ignored.
func CVSS3BaseScore(vector string) (float64, error) {
	parts := strings.Split(strings.TrimSpace(vector), "/")
	if len(parts) < 9 || (parts[0] != "CVSS:3.1" && parts[0] != "CVSS:3.0") {
		return 0, fmt.Errorf("not a CVSS v3 vector: %q", vector)
	}
	m := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, ":")
		if !ok {
			return 0, fmt.Errorf("CVSS vector %q: malformed metric %q", vector, p)
		}
		if _, dup := m[k]; dup {
			return 0, fmt.Errorf("CVSS vector %q: metric %s twice", vector, k)
		}
		m[k] = v
	}
	w := map[string]float64{}
	for k, vals := range cvss3Weights {
		x, ok := vals[m[k]]
		if !ok {
			return 0, errors.New("CVSS vector " + vector + ": missing or bad base metric " + k)
		}
		w[k] = x
	}
	changed := m["S"] == "C"
	if changed {
		switch m["PR"] {
		case "L":
			w["PR"] = 0.68
		case "H":
			w["PR"] = 0.5
		}
	}
	iss := 1 - (1-w["C"])*(1-w["I"])*(1-w["A"])
	var impact float64
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	if impact <= 0 {
		return 0, nil
	}
	expl := 8.22 * w["AV"] * w["AC"] * w["PR"] * w["UI"]
	if changed {
		return roundUp(math.Min(1.08*(impact+expl), 10)), nil
	}
	return roundUp(math.Min(impact+expl, 10)), nil
}

// roundUp is CVSS 3.1's Roundup: the smallest one-decimal number not below x.
func roundUp(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return float64(i/10000+1) / 10
}

// CVSS4Score computes the score of a CVSS v4.0 vector such as
// "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N" with
// the FIRST v4.0 algorithm (github.com/pandatix/go-cvss). A vector carrying
// threat or environmental metrics is scored with them (CVSS-BT, -BE, -BTE).
func CVSS4Score(vector string) (float64, error) {
	v, err := gocvss40.ParseVector(strings.TrimSpace(vector))
	if err != nil {
		return 0, fmt.Errorf("CVSS v4 vector %q: %w", vector, err)
	}
	return v.Score(), nil
}
