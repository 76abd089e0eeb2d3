package inventory

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDpkgMachineStatus reads this machine's dpkg database and checks it
// against what dpkg-query itself says is installed.
func TestDpkgMachineStatus(t *testing.T) {
	data, err := os.ReadFile(dpkgStatus)
	if err != nil {
		t.Skipf("no dpkg database here: %v", err)
	}
	out, err := exec.Command("dpkg-query", "-W", "-f",
		`${db:Status-Status}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n`).Output()
	if err != nil {
		t.Skipf("dpkg-query: %v", err)
	}
	var want []string
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) == 5 && (f[0] == "installed" || strings.HasPrefix(f[0], "triggers-")) {
			want = append(want, strings.Join(f[1:], " "))
		}
	}
	pkgs, err := Dpkg{}.Extract(dpkgStatus, data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs {
		if p.Ecosystem != EcosystemDebian || p.Path != dpkgStatus {
			t.Errorf("%s: ecosystem %q path %q", p.Name, p.Ecosystem, p.Path)
		}
		sv := p.SourceVersion
		if sv == "" {
			sv = p.Version
		}
		got = append(got, strings.Join([]string{p.Name, p.Version, p.SourceName, sv}, " "))
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) < 10 {
		t.Fatalf("dpkg-query lists only %d installed packages", len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %d packages, dpkg-query lists %d; first difference:\n%s", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return "got  " + g + "\nwant " + w
		}
	}
	return ""
}

func TestDpkgStatusStates(t *testing.T) {
	status := `Package: kept
Status: install ok installed
Version: 1.0-1

Package: held
Status: hold ok installed
Version: 2:3.4-5
Source: heldsrc (2:3.4-4)

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: purged
Status: purge ok not-installed

Package: broken
Status: install reinstreq half-installed
Version: 1

Package: unpacked
Status: install ok unpacked
Version: 1

Package: triggered
Status: install ok triggers-pending
Version: 7
Description: a long
 description with continuation lines
 Package: not-a-package
 .

Package: no-status
Version: 1
`
	pkgs, err := Dpkg{}.Extract(dpkgStatus, []byte(status))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Ecosystem: "Debian", Name: "kept", Version: "1.0-1", SourceName: "kept", Path: dpkgStatus},
		{Ecosystem: "Debian", Name: "held", Version: "2:3.4-5", SourceName: "heldsrc", SourceVersion: "2:3.4-4", Path: dpkgStatus},
		{Ecosystem: "Debian", Name: "triggered", Version: "7", SourceName: "triggered", Path: dpkgStatus},
	}
	if !slices.Equal(pkgs, want) {
		t.Errorf("got %+v\nwant %+v", pkgs, want)
	}
}

// TestDpkgDistroless reads the one-file-per-package layout of distroless
// images, whose files may have no Status field, next to their .md5sums.
func TestDpkgDistroless(t *testing.T) {
	d := Dpkg{}
	for p, want := range map[string]bool{
		"/var/lib/dpkg/status":                   true,
		"/var/lib/dpkg/status.d/libc6":           true,
		"/var/lib/dpkg/status.d/libc6.md5sums":   false,
		"/var/lib/dpkg/status-old":               false,
		"/var/lib/dpkg/status.d/sub/libc6":       false,
		"/usr/local/var/lib/dpkg/status":         false,
		"/var/lib/dpkg/available":                false,
		"/var/lib/dpkg/status.d/base-files_12.4": true,
		"/var/lib/dpkg/updates/0000":             true,
		"/var/lib/dpkg/updates/0042":             true,
		"/var/lib/dpkg/updates/tmp.i":            false,
		"/var/lib/dpkg/updates/":                 false,
		"/var/lib/dpkg/updates/sub/0001":         false,
	} {
		if got := d.Wants(p); got != want {
			t.Errorf("Wants(%s) = %v, want %v", p, got, want)
		}
	}
	data := []byte("Package: libssl3\nVersion: 3.0.15-1~deb12u1\nArchitecture: amd64\nSource: openssl\n")
	pkgs, err := d.Extract("/var/lib/dpkg/status.d/libssl3", data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{{Ecosystem: "Debian", Name: "libssl3", Version: "3.0.15-1~deb12u1", SourceName: "openssl", Arch: "amd64", Path: "/var/lib/dpkg/status.d/libssl3"}}
	if !slices.Equal(pkgs, want) {
		t.Errorf("got %+v\nwant %+v", pkgs, want)
	}
	// In the main status file and the update journal a missing Status is
	// not "installed".
	for _, p := range []string{dpkgStatus, dpkgUpdates + "/0001"} {
		if pkgs, _ := d.Extract(p, data); len(pkgs) != 0 {
			t.Errorf("%s without Status field: got %+v", p, pkgs)
		}
	}
	// A journal entry dpkg applies on top of the status file is read.
	pkgs, err = d.Extract(dpkgUpdates+"/0001", []byte("Package: libssl3\nStatus: install ok installed\nVersion: 3.0.15-1~deb12u1\n"))
	if err != nil || len(pkgs) != 1 || pkgs[0].Version != "3.0.15-1~deb12u1" {
		t.Errorf("update journal: got %+v, %v", pkgs, err)
	}
}

func TestParseDpkgSource(t *testing.T) {
	for in, want := range map[string][2]string{
		"glibc":                    {"glibc", ""},
		"glibc (2.36-9+deb12u4)":   {"glibc", "2.36-9+deb12u4"},
		"openssl ( 3.0.11-1 )":     {"openssl", "3.0.11-1"},
		"gcc-12 (12.2.0-14":        {"gcc-12", ""},
		"linux-signed-amd64 (1:2)": {"linux-signed-amd64", "1:2"},
	} {
		name, version := parseDpkgSource(in)
		if name != want[0] || version != want[1] {
			t.Errorf("parseDpkgSource(%q) = %q, %q; want %q, %q", in, name, version, want[0], want[1])
		}
	}
}

// FuzzDpkg checks that any input yields well-formed packages or an error
// of the documented kinds, within the per-file bounds.
func FuzzDpkg(f *testing.F) {
	if data, err := os.ReadFile(dpkgStatus); err == nil {
		f.Add(data[:min(len(data), 8<<10)])
	}
	f.Add([]byte("Package: a\nStatus: install ok installed\nVersion: 1\nSource: b (2)\n\n"))
	f.Add([]byte("Package: a\r\nVersion: 1\r\n \r\n\tcont\r\n"))
	f.Add([]byte("package: a\nVERSION: 1\n\nPackage : b\nversion:\n 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []string{dpkgStatus, dpkgStatusDir + "/x"} {
			pkgs, err := Dpkg{}.Extract(p, data)
			checkExtractResult(t, pkgs, err)
			for _, pkg := range pkgs {
				if pkg.Name == "" || pkg.Version == "" || pkg.SourceName == "" || pkg.Path != p {
					t.Fatalf("incomplete package %+v", pkg)
				}
				if pkg.Name != strings.ToLower(pkg.Name) {
					t.Fatalf("name %q not folded to lower case", pkg.Name)
				}
			}
		}
	})
}
