package match

import (
	"bufio"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// randomVersion builds a version from parts drawn from the given pieces.
func randomVersion(r *rand.Rand, first []string, rest []string, n int) string {
	var b strings.Builder
	b.WriteString(first[r.IntN(len(first))])
	for i := r.IntN(n); i > 0; i-- {
		b.WriteString(rest[r.IntN(len(rest))])
	}
	return b.String()
}

// TestCompareDebianRandomAgainstDpkg compares generated versions with
// CompareDebian and with dpkg --compare-versions.
func TestCompareDebianRandomAgainstDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not installed")
	}
	if testing.Short() {
		t.Skip("runs dpkg 400 times")
	}
	r := rand.New(rand.NewPCG(1, 2))
	first := []string{"0", "1", "1:1", "2:0", "10", "3"}
	rest := []string{".0", ".1", ".10", "~rc1", "~", "+dfsg", "+b1", "a", "-1", "-2~deb12u1", "-0ubuntu1.18", ".01", "+", "-1+deb12u10", "z"}
	for i := 0; i < 200; i++ {
		a, b := randomVersion(r, first, rest, 5), randomVersion(r, first, rest, 5)
		want := 0
		if exec.Command("dpkg", "--compare-versions", a, "lt", b).Run() == nil {
			want = -1
		} else if exec.Command("dpkg", "--compare-versions", a, "gt", b).Run() == nil {
			want = 1
		}
		if got := CompareDebian(a, b); got != want {
			t.Errorf("CompareDebian(%q, %q) = %d, dpkg says %d", a, b, got, want)
		}
	}
}

// TestComparePyPIAgainstPackaging compares generated versions with
// ComparePyPI and with the Python "packaging" library (Debian package
// python3-packaging), the reference implementation of PEP 440.
func TestComparePyPIAgainstPackaging(t *testing.T) {
	const script = `
import sys
from packaging.version import Version
for line in sys.stdin:
    a, b = line.rstrip("\n").split(" ")
    x, y = Version(a), Version(b)
    print(-1 if x < y else 1 if x > y else 0)
`
	python := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import packaging.version").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		t.Skip("python3 with packaging not installed (apt-get install python3-packaging)")
	}
	r := rand.New(rand.NewPCG(3, 4))
	first := []string{"0", "1", "1!1", "2", "1.0", "10"}
	rest := []string{".0", ".1", ".10", "a1", "b2", "rc1", ".post1", ".dev0", ".dev3", "+local.1", "+abc", "-1", "c1", ".post0"}
	var pairs [][2]string
	var in strings.Builder
	for i := 0; i < 500; i++ {
		a, b := randomVersion(r, first, rest, 4), randomVersion(r, first, rest, 4)
		if _, err := CompareVersions("PyPI", a, b); err != nil {
			continue // both must be valid for the reference to compare them
		}
		pairs = append(pairs, [2]string{a, b})
		in.WriteString(a + " " + b + "\n")
	}
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for i := 0; sc.Scan(); i++ {
		want, _ := strconv.Atoi(sc.Text())
		if got := ComparePyPI(pairs[i][0], pairs[i][1]); got != want {
			t.Errorf("ComparePyPI(%q, %q) = %d, packaging says %d", pairs[i][0], pairs[i][1], got, want)
		}
	}
	if len(pairs) < 100 {
		t.Errorf("only %d valid pairs generated", len(pairs))
	}
}
