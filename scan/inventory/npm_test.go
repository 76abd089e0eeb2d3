package inventory

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// nodeLister prints "name version path" for every package.json under a
// node_modules directory that names both, as Node itself parses them.
const nodeLister = `
const fs = require('fs'), path = require('path');
function walk(d) {
  for (const e of fs.readdirSync(d, {withFileTypes: true})) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) { walk(p); continue; }
    if (!e.isFile() || e.name !== 'package.json' || !p.includes('/node_modules/')) continue;
    let j;
    try { j = JSON.parse(fs.readFileSync(p, 'utf8')); } catch (err) { console.log('ERROR ' + p); continue; }
    if (j && typeof j.name === 'string' && j.name && typeof j.version === 'string' && j.version)
      console.log(j.name + ' ' + j.version + ' ' + p);
  }
}
walk(process.argv[1]);
`

// TestNPMMachineModules reads the node_modules trees installed on this machine
// and compares with what Node reads from the same files.
func TestNPMMachineModules(t *testing.T) {
	const root = "/usr/lib/node_modules"
	if _, err := os.Stat(root); err != nil {
		t.Skip("no global node_modules here")
	}
	out, err := exec.Command("node", "-e", nodeLister, root).Output()
	if err != nil {
		t.Skipf("node: %v", err)
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(want)
	var got []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !(NPM{}).Wants(p) {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		pkgs, err := NPM{}.Extract(p, data)
		if err != nil {
			got = append(got, "ERROR "+p)
		}
		for _, pkg := range pkgs {
			got = append(got, pkg.Name+" "+pkg.Version+" "+pkg.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if len(want) < 20 || !slices.Equal(got, want) {
		t.Errorf("got %d packages, node reads %d; first difference:\n%s", len(got), len(want), firstDiff(got, want))
	}
}

func TestNPM(t *testing.T) {
	n := NPM{}
	for p, want := range map[string]bool{
		"/app/node_modules/lodash/package.json":                      true,
		"/app/node_modules/@babel/core/package.json":                 true,
		"/app/node_modules/a/node_modules/b/package.json":            true,
		"/app/package.json":                                          false,
		"/app/node_modules/lodash/package.json.bak":                  false,
		"/usr/lib/node_modules/npm/node_modules/semver/package.json": true,
		"/app/node_modules_backup/x/package.json":                    false,
		"/app/src/node_modules.js":                                   false,
		"/app/node_modules/lodash/fp/package.json":                   true, // read; yields nothing without name and version
	} {
		if got := n.Wants(p); got != want {
			t.Errorf("Wants(%s) = %v, want %v", p, got, want)
		}
	}
	for in, want := range map[string]string{
		`{"name":"@scope/pkg","version":"1.2.3"}`: "@scope/pkg 1.2.3",
		`{"name":"x"}`:                   "",
		`{"type":"module"}`:              "",
		`{"name":"x","version":{"v":1}}`: "",
		`{"name":"x","version":"1.0.0","dependencies":{"y":"^2"}}`: "x 1.0.0",
	} {
		pkgs, err := n.Extract("/n/node_modules/x/package.json", []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if len(pkgs) == 1 {
			got = pkgs[0].Name + " " + pkgs[0].Version
		}
		if got != want {
			t.Errorf("Extract(%s) = %q, want %q", in, got, want)
		}
	}
	if _, err := n.Extract("/n/node_modules/x/package.json", []byte("{not json")); err == nil {
		t.Error("no error for malformed package.json")
	}
}
