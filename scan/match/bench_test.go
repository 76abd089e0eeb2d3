package match

import (
	"path/filepath"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
	"github.com/portcullis-dev/portcullis/scan/vulndb/vulndbtest"
)

// BenchmarkMatchGo matches a Go binary's worth of modules against the real
// Go advisories.
func BenchmarkMatchGo(b *testing.B) {
	dst := filepath.Join(b.TempDir(), "db")
	if _, err := vulndb.Import(dst, vulndbtest.GoOSVDir(b)); err != nil {
		b.Fatal(err)
	}
	db, err := vulndb.Open(dst)
	if err != nil {
		b.Fatal(err)
	}
	pkgs := []inventory.Package{
		{Ecosystem: "Go", Name: "stdlib", Version: "1.22.1"},
		{Ecosystem: "Go", Name: "golang.org/x/net", Version: "v0.0.0-20220722155237-a158d28d115b"},
		{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"},
		{Ecosystem: "Go", Name: "golang.org/x/crypto", Version: "v0.0.0-20201216223049-8b5274cf687f"},
		{Ecosystem: "Go", Name: "github.com/example/none", Version: "v1.0.0"},
	}
	for b.Loop() {
		Match(db, pkgs, Distro{})
	}
}

// BenchmarkOpenGo opens a database of the real Go advisories.
func BenchmarkOpenGo(b *testing.B) {
	dst := filepath.Join(b.TempDir(), "db")
	if _, err := vulndb.Import(dst, vulndbtest.GoOSVDir(b)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := vulndb.Open(dst); err != nil {
			b.Fatal(err)
		}
	}
}

// benchVersions are pairs of real versions of each ecosystem, as advisories
// and images carry them.
var benchVersions = []struct{ ecosystem, a, b string }{
	{"Debian:12", "3.0.14-1~deb12u1", "3.0.11-1~deb12u2"},
	{"Debian:12", "1:2.38.1-5+deb12u1", "1:2.38.1-5+b1"},
	{"Alpine:v3.20", "1.36.1-r29", "1.36.1-r30"},
	{"Alpine:v3.20", "1.0.0_pre20191002222144-r0", "1.0.0_pre20210530193627-r0"},
	{"PyPI", "2.31.0", "2.3.0.post1"},
	{"PyPI", "1.0a1.dev1", "1!0.5"},
	{"Maven", "2.15.0", "2.3.1"},
	{"Maven", "1.0-SNAPSHOT", "1.0.Final"},
	{"Go", "v0.0.0-20220722155237-a158d28d115b", "v0.3.8-0.20220101000000-abcdefabcdef"},
	{"npm", "1.0.0-beta.11", "1.0.0-rc.1"},
}

// BenchmarkCompare orders one pair of versions of each ecosystem per
// iteration through Compare.
func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		for _, v := range benchVersions {
			Compare(v.ecosystem, v.a, v.b)
		}
	}
}
