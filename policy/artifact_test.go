package policy

import (
	"strings"
	"testing"
)

func TestArtifactTagShape(t *testing.T) {
	h64 := strings.Repeat("ab", 32)
	h128 := strings.Repeat("0f", 64)
	tests := []struct {
		tag  string
		want bool
	}{
		{"sha256-" + h64, true},
		{"sha256-" + h64 + ".sig", true},
		{"sha256-" + h64 + ".att", true},
		{"sha256-" + h64 + ".sbom", true},
		{"sha512-" + h128, true},
		{"sha512-" + h128 + ".sig", true},
		{"sha256-" + h64 + ".foo", false},
		{"sha256-" + h64 + ".", false},
		{"sha256-" + h64 + ".sig.sig", false},
		{"sha256-" + h64[:63], false},
		{"sha256-" + h64 + "a", false},
		{"sha256-" + strings.ToUpper(h64), false},
		{"sha512-" + h64, false},
		{"sha256-" + h128, false},
		{"sha256:" + h64, false},
		{"latest", false},
		{"1.0.0", false},
		{"", false},
		{"xsha256-" + h64, false},
	}
	for _, tt := range tests {
		if got := ArtifactTagKind(tt.tag) != ""; got != tt.want {
			t.Errorf("ArtifactTagKind(%q) != \"\" is %v, want %v", tt.tag, got, tt.want)
		}
	}
}
