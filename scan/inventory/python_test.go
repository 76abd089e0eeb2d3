package inventory

import (
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPythonMachineDistributions reads the distributions installed in this
// machine's system site-packages and compares with what Python's own
// importlib.metadata finds there.
func TestPythonMachineDistributions(t *testing.T) {
	const python, site = "/usr/bin/python3", "/usr/lib/python3/dist-packages"
	if _, err := os.Stat(site); err != nil {
		t.Skip("no system dist-packages here")
	}
	out, err := exec.Command(python, "-c", `
import importlib.metadata as m, sys
for d in m.distributions(path=[sys.argv[1]]):
    print(d.metadata['Name'], d.version, d._path)
`, site).Output()
	if err != nil {
		t.Skipf("python: %v", err)
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(want)
	var got []string
	err = filepath.WalkDir(site, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !(Python{}).Wants(p) {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		pkgs, err := Python{}.Extract(p, data)
		if err != nil {
			t.Errorf("%s: %v", p, err)
		}
		for _, pkg := range pkgs {
			dir := pkg.Path
			if !strings.HasSuffix(dir, ".egg-info") {
				dir = path.Dir(dir)
			}
			got = append(got, pkg.Name+" "+pkg.Version+" "+dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if len(want) < 5 || !slices.Equal(got, want) {
		t.Errorf("got %d distributions, importlib finds %d; first difference:\n%s", len(got), len(want), firstDiff(got, want))
	}
}

func TestPython(t *testing.T) {
	py := Python{}
	for p, want := range map[string]bool{
		"/usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA": true,
		"/usr/lib/python3/dist-packages/crcmod-1.7.egg-info/PKG-INFO":       true,
		"/usr/lib/python3/dist-packages/python_apt-2.6.0.egg-info":          true,
		"/usr/lib/python3/dist-packages/requests-2.28.1.dist-info/RECORD":   false,
		"/app/METADATA": false,
	} {
		if got := py.Wants(p); got != want {
			t.Errorf("Wants(%s) = %v, want %v", p, got, want)
		}
	}
	metadata := "Metadata-Version: 2.1\r\nName: Flask\r\nVersion: 2.2.2\r\nSummary: A simple framework\r\nClassifier: Framework :: Flask\r\n" +
		"Description: first line\r\n        Name: not-this\r\n\r\nName: not-the-body\r\n"
	pkgs, err := py.Extract("/x.dist-info/METADATA", []byte(metadata))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{{Ecosystem: "PyPI", Name: "Flask", Version: "2.2.2", Path: "/x.dist-info/METADATA"}}
	if !slices.Equal(pkgs, want) {
		t.Errorf("got %+v, want %+v", pkgs, want)
	}
	if pkgs, _ := py.Extract("/x.dist-info/METADATA", []byte("Metadata-Version: 2.1\n\nName: body\nVersion: 1\n")); len(pkgs) != 0 {
		t.Errorf("headers read from the body: %+v", pkgs)
	}
}
