package proxy

import (
	"strconv"
	"strings"
	"testing"
)

func TestRangeStartAndUploadID(t *testing.T) {
	for h, want := range map[string]int64{
		"0-1023": 0, "1024-2047": 1024, "bytes 5-9": 5, " 7 - 9 ": 7, "": -1, "-5": -1, "x-1": -1, "10": -1, "-1-2": -1,
	} {
		if got := rangeStart(h); got != want {
			t.Errorf("rangeStart(%q) = %d, want %d", h, got, want)
		}
	}
	for loc, want := range map[string]string{
		"/v2/team/app/blobs/uploads/0a1b?_state=x": "0a1b",
		"http://reg:5000/v2/a/blobs/uploads/u-1":   "u-1",
		"/v2/team/app/blobs/uploads/":              "",
		"/v2/team/app/manifests/1.0":               "",
		"%zz":                                      "",
	} {
		if got := uploadIDOf(loc); got != want {
			t.Errorf("uploadIDOf(%q) = %q, want %q", loc, got, want)
		}
	}
}

// FuzzUploadHeaders feeds the two upload headers the tee parses from outside input
// (Content-Range from clients, Location from the upstream): no panic, and what they
// return is consistent with their input.
func FuzzUploadHeaders(f *testing.F) {
	for _, s := range []string{"0-1023", "bytes 5-9", "", "-", "99999999999999999999-1", "/v2/a/blobs/uploads/x?y=z", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n := rangeStart(s); n < -1 {
			t.Fatalf("rangeStart(%q) = %d", s, n)
		} else if n >= 0 && !strings.Contains(s, strconv.FormatInt(n, 10)) {
			t.Fatalf("rangeStart(%q) = %d, not in the header", s, n)
		}
		if id := uploadIDOf(s); strings.Contains(id, "/") {
			t.Fatalf("uploadIDOf(%q) = %q", s, id)
		}
	})
}
