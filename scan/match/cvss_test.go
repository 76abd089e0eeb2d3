package match

import (
	"math/rand/v2"
	"strings"
	"testing"

	gocvss31 "github.com/pandatix/go-cvss/31"
)

func TestCVSS3BaseScore(t *testing.T) {
	for vec, want := range map[string]float64{
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H":               9.8,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H":               10.0,
		"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H":               7.4,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H":               7.5,
		"CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N":               4.7,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N":               6.1,
		"CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H":               8.8,
		"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H":               9.9,
		"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N":               1.6,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N":               0,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C": 9.8,
	} {
		got, err := CVSS3BaseScore(vec)
		if err != nil || got != want {
			t.Errorf("CVSS3BaseScore(%s) = %v, %v; want %v", vec, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "CVSS:2.0/AV:N", "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
	} {
		if _, err := CVSS3BaseScore(bad); err == nil {
			t.Errorf("CVSS3BaseScore(%q) accepted", bad)
		}
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]Severity{
		"CRITICAL": SeverityCritical, "HIGH": SeverityHigh, "MODERATE": SeverityMedium, "medium": SeverityMedium,
		"LOW": SeverityLow, "negligible": SeverityLow, "unimportant": SeverityLow, "low**": SeverityLow,
		"not yet assigned": SeverityUnknown, "": SeverityUnknown, "end-of-life": SeverityUnknown,
	} {
		if got := ParseSeverity(in); got != want {
			t.Errorf("ParseSeverity(%q) = %v, want %v", in, got, want)
		}
	}
	if SeverityFromScore(0) != SeverityNone || SeverityFromScore(3.9) != SeverityLow || SeverityFromScore(4) != SeverityMedium ||
		SeverityFromScore(8.9) != SeverityHigh || SeverityFromScore(9) != SeverityCritical {
		t.Error("SeverityFromScore buckets")
	}
	var s Severity
	if err := s.UnmarshalText([]byte("High")); err != nil || s != SeverityHigh {
		t.Errorf("UnmarshalText: %v %v", s, err)
	}
	if b, _ := SeverityCritical.MarshalText(); string(b) != "Critical" || Severity(42).String() != "Unknown" {
		t.Error("MarshalText / String")
	}
}

func TestCVSS4Score(t *testing.T) {
	for vec, want := range map[string]float64{
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N": 9.3,
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N": 0,
	} {
		if got, err := CVSS4Score(vec); err != nil || got != want {
			t.Errorf("CVSS4Score(%s) = %v, %v; want %v", vec, got, err, want)
		}
	}
	for _, bad := range []string{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:4.0/AV:N"} {
		if _, err := CVSS4Score(bad); err == nil {
			t.Errorf("CVSS4Score(%q) accepted", bad)
		}
	}
}

// randomCVSS31 returns a random, valid CVSS 3.1 base vector.
func randomCVSS31(r *rand.Rand) string {
	pick := func(s string) string { return string(s[r.IntN(len(s))]) }
	return "CVSS:3.1/AV:" + pick("NALP") + "/AC:" + pick("LH") + "/PR:" + pick("NLH") + "/UI:" + pick("NR") +
		"/S:" + pick("UC") + "/C:" + pick("HLN") + "/I:" + pick("HLN") + "/A:" + pick("HLN")
}

// TestCVSS3AgainstGoCVSS compares CVSS3BaseScore with an independent
// implementation over every combination's worth of random vectors.
func TestCVSS3AgainstGoCVSS(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 3000; i++ {
		vec := randomCVSS31(r)
		ref, err := gocvss31.ParseVector(vec)
		if err != nil {
			t.Fatalf("%s: %v", vec, err)
		}
		if got, _ := CVSS3BaseScore(vec); got != ref.BaseScore() {
			t.Errorf("CVSS3BaseScore(%s) = %v, go-cvss %v", vec, got, ref.BaseScore())
		}
	}
}

func FuzzCVSS(f *testing.F) {
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	f.Add("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
	f.Fuzz(func(t *testing.T, vec string) {
		s3, err3 := CVSS3BaseScore(vec)
		if err3 == nil && (s3 < 0 || s3 > 10) {
			t.Fatalf("score %v", s3)
		}
		if err3 == nil && strings.HasPrefix(vec, "CVSS:3.1/") {
			if ref, err := gocvss31.ParseVector(vec); err == nil && ref.BaseScore() != s3 {
				t.Fatalf("%s: %v, go-cvss %v", vec, s3, ref.BaseScore())
			}
		}
		if s4, err := CVSS4Score(vec); err == nil && (s4 < 0 || s4 > 10) {
			t.Fatalf("v4 score %v", s4)
		}
	})
}
