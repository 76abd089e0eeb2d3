package layer

import (
	"strings"
	"testing"
)

func TestParseOSRelease(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want Distro
	}{
		"debian": {
			in: `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`,
			want: Distro{ID: "debian", VersionID: "12", VersionCodename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		},
		"alpine": {
			in:   "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\nHOME_URL=\"https://alpinelinux.org/\"\n",
			want: Distro{ID: "alpine", VersionID: "3.20.3", PrettyName: "Alpine Linux v3.20"},
		},
		"quoting and comments": {
			in:   "# comment\nID='single'\n  VERSION_ID=\"1\\\"2\\\\3\\$\"\nPRETTY_NAME=\"unterminated\nVERSION_CODENAME=\r\nBAD LINE\n",
			want: Distro{ID: "single", VersionID: `1"2\3$`, PrettyName: `"unterminated`},
		},
		"empty": {},
	} {
		if got := ParseOSRelease([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", name, got, tc.want)
		}
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add([]byte("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME='x'\n"))
	f.Add([]byte("ID=\"a\\\nb\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := ParseOSRelease(data)
		for _, v := range []string{d.ID, d.VersionID, d.VersionCodename, d.PrettyName} {
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("value with a newline: %q", v)
			}
		}
	})
}
