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
