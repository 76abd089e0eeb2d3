package layer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/inventory"
)

// The benchmarks below build Results directly at a range of sizes up to ten
// times the default limits, and report the cost per element: it stays flat
// (O(n log n) at worst) as n grows a hundredfold. The 10× sizes run only
// without -short (they need a few hundred MiB).

// benchSizes returns the sizes to run: limit/100, limit/10, limit and, without
// -short, 10 × limit.
func benchSizes(limit int) []int {
	sizes := []int{limit / 100, limit / 10, limit}
	if !testing.Short() {
		sizes = append(sizes, 10*limit)
	}
	return sizes
}

// BenchmarkSquashDeepPaths stacks two layers of files at paths ten times
// MaxPathBytes deep (one "d/" per level), the upper one whiting out one of
// them: the cost per path byte stays flat with depth.
func BenchmarkSquashDeepPaths(b *testing.B) {
	limits := DefaultLimits()
	for _, depth := range benchSizes(limits.MaxPathBytes / 2) {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			deep := "/" + strings.Repeat("d/", depth)
			var lower, upper Result
			for i := range 16 {
				p := fmt.Sprintf("%s%d/package.json", deep, i)
				lower.Files = append(lower.Files, File{Path: p, Packages: []inventory.Package{{Ecosystem: "npm", Name: "a", Version: "1", Path: p}}})
				lower.Paths.add(p, false)
			}
			upper.Whiteouts = []string{deep + "3"}
			lower.DiffID, upper.DiffID = "sha256:l", "sha256:u"
			lower.Paths.seal()
			upper.Paths.seal()
			b.ResetTimer()
			for b.Loop() {
				if img := Squash([]Result{lower, upper}); len(img.Packages) != 15 {
					b.Fatalf("%d packages", len(img.Packages))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(16*len(deep)), "ns/pathbyte")
		})
	}
}

// BenchmarkSquashPackagesLayers stacks layers that each rewrite the dpkg
// status file with the same packages plus one: packages × layers up to ten
// times MaxPackages in all.
func BenchmarkSquashPackagesLayers(b *testing.B) {
	limits := DefaultLimits()
	for _, total := range benchSizes(limits.MaxPackages) {
		for _, layers := range []int{10, 1000} {
			if total/layers < 1 {
				continue
			}
			b.Run(fmt.Sprintf("packages=%d/layers=%d", total, layers), func(b *testing.B) {
				per := total / layers
				results := make([]Result, layers)
				for i := range results {
					pkgs := make([]inventory.Package, per)
					for j := range pkgs {
						pkgs[j] = inventory.Package{Ecosystem: "Debian", Name: fmt.Sprintf("p%d", j+i), Version: "1", Path: dpkgStatus}
					}
					results[i].Files = []File{{Path: dpkgStatus, Packages: pkgs}}
					results[i].Paths.add(dpkgStatus, false)
					results[i].Paths.seal()
					results[i].DiffID = fmt.Sprintf("sha256:%d", i)
				}
				b.ResetTimer()
				for b.Loop() {
					if img := Squash(results); len(img.Packages) != per {
						b.Fatalf("%d packages", len(img.Packages))
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(total), "ns/package")
			})
		}
	}
}

// BenchmarkSquashWhiteouts stacks a layer of many files under one upper
// layer of as many whiteouts and opaque directories.
func BenchmarkSquashWhiteouts(b *testing.B) {
	limits := DefaultLimits()
	for _, n := range benchSizes(int(limits.MaxEntries) / 10) {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var lower, upper Result
			for i := range n {
				p := fmt.Sprintf("/a/%d/b/package.json", i)
				lower.Files = append(lower.Files, File{Path: p, Packages: []inventory.Package{{Ecosystem: "npm", Name: "a", Version: "1", Path: p}}})
				lower.Paths.add(p, false)
				if i%2 == 0 {
					upper.Whiteouts = append(upper.Whiteouts, fmt.Sprintf("/a/%d/b", i))
				} else {
					upper.OpaqueDirs = append(upper.OpaqueDirs, fmt.Sprintf("/a/%d", i+1))
				}
			}
			lower.DiffID, upper.DiffID = "sha256:l", "sha256:u"
			lower.Paths.seal()
			upper.Paths.seal()
			b.ResetTimer()
			for b.Loop() {
				Squash([]Result{lower, upper})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
		})
	}
}

// BenchmarkPathSet adds and seals entries and looks each up.
func BenchmarkPathSet(b *testing.B) {
	limits := DefaultLimits()
	for _, n := range benchSizes(int(limits.MaxEntries)) {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			paths := make([]string, n)
			for i := range paths {
				paths[i] = fmt.Sprintf("/usr/lib/x/%d", i)
			}
			b.ResetTimer()
			for b.Loop() {
				var s PathSet
				for _, p := range paths {
					s.add(p, false)
				}
				s.seal()
				for _, p := range paths[:n/10] {
					if !s.HasNonDir(p) {
						b.Fatal("lost a path")
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
		})
	}
}
