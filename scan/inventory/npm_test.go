package inventory

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
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
		`{"name":"x"}`:      "",
		`{"type":"module"}`: "",
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

// nodeReads runs Node's own reading of a package.json (the BOM stripped as
// Node's module loader does, then JSON.parse) over each input and returns
// "name version", "" when either is missing or not a string, or "ERROR".
func nodeReads(t *testing.T, inputs [][]byte) []string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	const script = `
const inputs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
for (const b64 of inputs) {
  let s = Buffer.from(b64, 'base64').toString('utf8');
  if (s.charCodeAt(0) === 0xFEFF) s = s.slice(1);
  let out;
  try {
    const j = JSON.parse(s);
    out = (j && typeof j.name === 'string' && j.name && typeof j.version === 'string' && j.version) ? j.name + ' ' + j.version : '';
  } catch (e) { out = 'ERROR'; }
  console.log(JSON.stringify(out));
}`
	enc := make([]string, len(inputs))
	for i, in := range inputs {
		enc[i] = base64.StdEncoding.EncodeToString(in)
	}
	stdin, _ := json.Marshal(enc)
	cmd := exec.Command("node", "-e", script)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got []string
	for line := range strings.Lines(string(out)) {
		var s string
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("node output %q: %v", line, err)
		}
		got = append(got, s)
	}
	return got
}

// TestNPMReadsWhatNodeReads compares, input by input, what the extractor
// finds with what Node finds in the same bytes: keys are case-sensitive, the
// last duplicate wins, a BOM is skipped. Where Node reads a file the
// extractor cannot (deep nesting) or Node fails, the extractor must return
// an error, never "no packages".
func TestNPMReadsWhatNodeReads(t *testing.T) {
	deep := `{"name":"x","version":"1.0.0","a":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`
	cases := []struct {
		name, in string
		errOnly  bool // Node reads it; the extractor must stop with a LimitError
	}{
		{"plain", `{"name":"x","version":"1.0.0"}`, false},
		{"upper-case VERSION does not override", `{"name":"x","version":"1.0.0","VERSION":"9.9.9"}`, false},
		{"Version alone is no version", `{"name":"x","Version":"1.0.0"}`, false},
		{"NAME alone is no name", `{"NAME":"x","version":"1.0.0"}`, false},
		{"last duplicate wins", `{"name":"x","version":"9.9.9","version":"1.0.0"}`, false},
		{"escaped key", `{"name":"x","\u0076ersion":"1.0.0"}`, false},
		{"BOM", "\xef\xbb\xbf" + `{"name":"x","version":"1.0.0"}`, false},
		{"nested version is not the version", `{"name":"x","a":{"version":"9"},"version":"1.0.0"}`, false},
		{"trailing garbage", `{"name":"x","version":"1.0.0"} x`, false},
		{"two objects", `{"name":"x","version":"1.0.0"}{}`, false},
		{"array", `[{"name":"x","version":"1.0.0"}]`, false},
		{"truncated", `{"name":"x","version":"1.0.0"`, false},
		{"deep nesting", deep, true},
	}
	inputs := make([][]byte, len(cases))
	for i, c := range cases {
		inputs[i] = []byte(c.in)
	}
	node := nodeReads(t, inputs)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkgs, err := NPM{}.Extract("/n/node_modules/x/package.json", inputs[i])
			checkExtractResult(t, pkgs, err)
			got := ""
			switch {
			case err != nil:
				got = "ERROR"
			case len(pkgs) == 1:
				got = pkgs[0].Name + " " + pkgs[0].Version
			}
			if c.errOnly {
				var le *LimitError
				if !errors.As(err, &le) {
					t.Errorf("got %q (error %v), want a LimitError (node reads %q)", got, err, node[i])
				}
				return
			}
			if got != node[i] {
				t.Errorf("got %q, node reads %q", got, node[i])
			}
		})
	}
}

// TestNPMErrors checks the values npm cannot use and the size bound.
func TestNPMErrors(t *testing.T) {
	for _, in := range []string{
		`{"name":"x","version":{"v":1}}`,
		`{"name":"x","version":1}`,
		`{"name":"x","version":null}`,
		`{"name":["x"],"version":"1"}`,
	} {
		var pe *ParseError
		if _, err := (NPM{}).Extract("/n/node_modules/x/package.json", []byte(in)); !errors.As(err, &pe) {
			t.Errorf("Extract(%s): error %v, want a ParseError", in, err)
		}
	}
	big := []byte(`{"name":"x","version":"1","pad":"` + strings.Repeat("a", MaxManifestBytes) + `"}`)
	var le *LimitError
	if _, err := (NPM{}).Extract("/n/node_modules/x/package.json", big); !errors.As(err, &le) {
		t.Errorf("big file: error %v, want a LimitError", err)
	}
}

func FuzzNPM(f *testing.F) {
	f.Add([]byte(`{"name":"x","version":"1.0.0","VERSION":"2"}`))
	f.Add([]byte("\xef\xbb\xbf{\"name\":\"x\",\"version\":\"1\",\"a\":[[{}]]}"))
	f.Add([]byte(`{"name":"x","version":"1"} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := NPM{}.Extract("/n/node_modules/x/package.json", data)
		checkExtractResult(t, pkgs, err)
		if len(pkgs) > 1 || len(pkgs) == 1 && (pkgs[0].Name == "" || pkgs[0].Version == "") {
			t.Fatalf("packages %+v", pkgs)
		}
		// Whatever it finds, encoding/json (which agrees with JSON.parse on
		// valid input) must find a string name and version at the top level.
		if len(pkgs) == 1 {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), &m); err != nil {
				t.Fatalf("found %+v in invalid JSON: %v", pkgs, err)
			}
		}
	})
}
