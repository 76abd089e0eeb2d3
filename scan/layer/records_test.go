package layer

import (
	"slices"
	"strings"
	"testing"
)

func TestCandidateAs(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/opt/dpkg/status", dpkgStatus},
		{"/x/.wh..wh.plnk/status", dpkgStatus},
		{"/opt/status.d/base", dpkgStatusDir + "/base"},
		{"/opt/status.d/base.md5sums", ""},
		{"/opt/apk/installed", apkInstalled},
		{"/opt/status.txt", ""},
		{"/status.d", ""},
	} {
		if got := candidateAs(c.path); got != c.want {
			t.Errorf("candidateAs(%q) = %q, want %q", c.path, got, c.want)
		}
	}
}

func TestIsZstd(t *testing.T) {
	for _, c := range []struct {
		magic string
		want  bool
	}{
		{"\x28\xb5\x2f\xfd", true},
		{"\x50\x2a\x4d\x18", true}, // skippable frames 0x184D2A50…5F
		{"\x5f\x2a\x4d\x18", true},
		{"\x60\x2a\x4d\x18", false},
		{"\x4f\x2a\x4d\x18", false},
		{"\x28\xb5\x2f", false},
		{"\x1f\x8b\x08\x00", false},
	} {
		if got := isZstd([]byte(c.magic)); got != c.want {
			t.Errorf("isZstd(% x) = %v", c.magic, got)
		}
	}
}

// TestAncestorHashes checks the incremental hashing against hashing each
// prefix on its own.
func TestAncestorHashes(t *testing.T) {
	for _, p := range []string{"/", "/a", "/a/b/c", "/" + strings.Repeat("dir/", 100) + "f", "/usr/lib/os-release"} {
		var want []uint64
		for q := p; ; {
			want = append(want, pathHash(q))
			i := strings.LastIndexByte(q, '/')
			if i <= 0 {
				break
			}
			q = q[:i]
		}
		if got := ancestorHashes(p); !slices.Equal(got, want) {
			t.Errorf("%q: got %x, want %x", p, got, want)
		}
	}
}
