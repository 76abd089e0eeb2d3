package cache

import (
	"reflect"
	"testing"
)

type verdict struct {
	Digest   string   `json:"digest"`
	Findings []string `json:"findings"`
	Critical int      `json:"critical"`
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := verdict{Digest: dg1, Findings: []string{"CVE-2026-1", "GO-2026-2"}, Critical: 1}
	b, err := Encode(KindFindings, 3, in)
	if err != nil {
		t.Fatal(err)
	}
	var out verdict
	if !Decode(b, KindFindings, 3, &out) {
		t.Fatal("Decode of a fresh Encode reported a miss")
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
}

func TestDecodeMisses(t *testing.T) {
	good, err := Encode(KindFindings, 3, verdict{Digest: dg1})
	if err != nil {
		t.Fatal(err)
	}
	otherKind, _ := Encode(KindSignature, 3, verdict{Digest: dg1})
	otherVersion, _ := Encode(KindFindings, 4, verdict{Digest: dg1})
	wrongShape, _ := Encode(KindFindings, 3, []int{1, 2})
	cases := map[string][]byte{
		"nil":           nil,
		"empty":         {},
		"plain json":    []byte(`{"digest":"x"}`),
		"magic only":    []byte(codecMagic),
		"other kind":    otherKind,
		"other version": otherVersion,
		"wrong shape":   wrongShape,
		"truncated":     good[:len(good)-3],
		"trailing junk": append(append([]byte{}, good...), "}x"...),
		"huge kind len": append([]byte(codecMagic), 0xff, 0xff, 0xff, 0xff, 0x0f),
	}
	for name, data := range cases {
		out := verdict{Digest: "untouched"}
		if Decode(data, KindFindings, 3, &out) {
			t.Errorf("%s: Decode reported a hit", name)
		}
		if out.Digest != "untouched" || out.Findings != nil {
			t.Errorf("%s: a miss modified the target: %+v", name, out)
		}
	}
	var out verdict
	if Decode(good, KindFindings, 3, out) || Decode(good, KindFindings, 3, nil) || Decode(good, KindFindings, 3, (*verdict)(nil)) {
		t.Error("Decode into a non-pointer or nil pointer reported a hit")
	}
	if Decode(good, KindFindings, -1, &out) {
		t.Error("Decode with a negative version reported a hit")
	}
}

func TestEncodeRejects(t *testing.T) {
	if _, err := Encode("", 1, 1); err == nil {
		t.Error("Encode without a kind: want an error")
	}
	if _, err := Encode(KindLayer, -1, 1); err == nil {
		t.Error("Encode with a negative version: want an error")
	}
	if _, err := Encode(KindLayer, 1, make(chan int)); err == nil {
		t.Error("Encode of an unserialisable value: want an error")
	}
}

// FuzzDecode checks that Decode never panics, and that whatever it accepts re-encodes
// into something it accepts again.
func FuzzDecode(f *testing.F) {
	for _, v := range []any{verdict{Digest: dg1, Findings: []string{"a"}}, nil, 42, "s"} {
		b, err := Encode(KindFindings, 3, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(codecMagic + "\x08findings\x03null"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var v verdict
		if !Decode(data, KindFindings, 3, &v) {
			return
		}
		b, err := Encode(KindFindings, 3, v)
		if err != nil {
			t.Fatalf("re-encoding an accepted value: %v", err)
		}
		var again verdict
		if !Decode(b, KindFindings, 3, &again) || !reflect.DeepEqual(v, again) {
			t.Fatalf("re-encoded value did not round-trip: %+v vs %+v", v, again)
		}
		var anyV any
		Decode(data, KindFindings, 3, &anyV)
	})
}
