package match

import "testing"

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
