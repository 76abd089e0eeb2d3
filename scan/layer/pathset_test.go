package layer

import (
	"encoding/json"
	"testing"
)

func TestPathSet(t *testing.T) {
	var s PathSet
	s.add("/usr", true)
	s.add("/usr/bin/env", false)
	s.add("/usr/bin/env", false)
	s.add("/both", true)
	s.add("/both", false)
	s.seal()
	for p, want := range map[string][2]bool{
		"/usr":         {true, false},
		"/usr/bin/env": {true, true},
		"/usr/bin":     {false, false},
		"/both":        {true, true},
		"/":            {false, false},
	} {
		if s.Has(p) != want[0] || s.HasNonDir(p) != want[1] {
			t.Errorf("%s: Has %v HasNonDir %v, want %v", p, s.Has(p), s.HasNonDir(p), want)
		}
	}
	if s.Len() != 4 {
		t.Errorf("Len %d, want 4", s.Len())
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var decoded PathSet
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	if !decoded.Has("/usr") || !decoded.HasNonDir("/usr/bin/env") || decoded.HasNonDir("/usr") || decoded.Len() != 4 {
		t.Errorf("round trip lost paths: %s", b)
	}
	for _, bad := range []string{`{"dirs":"!!"}`, `{"nonDirs":"AAAA"}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &decoded); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1000000: "1,000,000", 12345678: "12,345,678", -1234: "-1,234"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}
