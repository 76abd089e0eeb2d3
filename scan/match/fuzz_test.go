package match

import "testing"

var comparators = map[string]func(a, b string) int{
	"Debian": CompareDebian, "Alpine": CompareAPK, "semver": CompareSemver, "PyPI": ComparePyPI, "Maven": CompareMaven,
}

// fuzzOrdering checks that cmp never panics, is reflexive and antisymmetric,
// and, when transitive is set, for three versions, transitive where the
// first two comparisons agree. OSV's Alpine and Maven orderings are not
// transitive on text that is not quite a version (apk "1.0_rc1-r1" > "A_p1"
// > "1A" but < "1A"; Maven "1.A" > "1" > "1SNAPSHOT" but < "1SNAPSHOT", the
// seeds under testdata/fuzz), and portcullis keeps OSV's ordering so as to
// agree with osv-scanner; their fixtures hold the ordering of real versions.
func fuzzOrdering(f *testing.F, cmp func(a, b string) int, seeds []versionCase, transitive bool) {
	for _, s := range seeds {
		f.Add(s.a, s.b, s.a+".1")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		if cmp(a, a) != 0 {
			t.Fatalf("cmp(%q, itself) != 0", a)
		}
		ab, ba := cmp(a, b), cmp(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("cmp(%q, %q) = %d but reversed %d", a, b, ab, ba)
		}
		if !transitive {
			return
		}
		bc, ac := cmp(b, c), cmp(a, c)
		if ab == bc && ab != 0 && ac != ab {
			t.Fatalf("not transitive: %q %q %q: %d %d %d", a, b, c, ab, bc, ac)
		}
		if ab == 0 && bc == 0 && ac != 0 {
			t.Fatalf("equality not transitive: %q %q %q", a, b, c)
		}
	})
}

func FuzzCompareDebian(f *testing.F) { fuzzOrdering(f, CompareDebian, debianCases, true) }

func FuzzCompareAPK(f *testing.F) {
	fuzzOrdering(f, CompareAPK, []versionCase{{"1.0_rc1-r2", "1.0.1a_p3", 0}, {"1.01", "1.1~ab", 0}}, false)
}

func FuzzCompareSemver(f *testing.F) {
	fuzzOrdering(f, CompareSemver, []versionCase{{"v1.2.3-rc.1+b", "1.2.3", 0}, {"v0.0.0-20220722155237-a158d28d115b", "1.0.0-alpha.beta", 0}}, true)
}

func FuzzComparePyPI(f *testing.F) {
	fuzzOrdering(f, ComparePyPI, []versionCase{{"1!1.0a1.post2.dev3+loc.1", "1.0rc1", 0}, {"1.0-1", "1.0.dev0", 0}}, true)
}

func FuzzCompareMaven(f *testing.F) {
	fuzzOrdering(f, CompareMaven, []versionCase{{"1.0-SNAPSHOT", "1.0.0.Final", 0}, {"2.0-beta9", "1.0-sp1-xyz", 0}}, false)
}

func TestComparatorsSpot(t *testing.T) {
	for name, cmp := range comparators {
		for _, v := range []string{"", "0", "~", "-", "1:", ":", "1.0-", "v", "+", "_", "..", "1..2"} {
			if cmp(v, v) != 0 {
				t.Errorf("%s(%q, itself) != 0", name, v)
			}
			_ = cmp(v, "1.0")
		}
	}
	if Compare("Debian:12", "1.0~rc1", "1.0") != -1 || Compare("Alpine:v3.20", "1.0_rc1", "1.0") != -1 ||
		Compare("Go", "v1.0.0", "1.0.0") != 0 || Compare("PyPI", "1.0rc1", "1.0") != -1 || Compare("Maven", "1.0-RC1", "1.0") != -1 {
		t.Error("Compare dispatch")
	}
}
