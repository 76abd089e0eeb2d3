package inventory

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
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
	if pkgs, err := py.Extract("/x.dist-info/METADATA", []byte("Metadata-Version: 2.1\n\nName: body\nVersion: 1\n")); len(pkgs) != 0 || err == nil {
		t.Errorf("headers read from the body: %+v, error %v", pkgs, err)
	}
}

// pythonReads runs Python's own reading of distribution metadata
// (email.message_from_string, as importlib.metadata does) over each input and
// returns "name version", or "" when either header is missing.
func pythonReads(t *testing.T, inputs [][]byte) []string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	const script = `
import base64, email, json, sys
for b64 in json.load(sys.stdin):
    m = email.message_from_string(base64.b64decode(b64).decode('utf-8', 'surrogateescape'))
    n, v = m['Name'], m['Version']
    print(json.dumps(n.strip() + ' ' + v.strip() if n and v and n.strip() and v.strip() else ''))
`
	enc := make([]string, len(inputs))
	for i, in := range inputs {
		enc[i] = base64.StdEncoding.EncodeToString(in)
	}
	stdin, _ := json.Marshal(enc)
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got []string
	for line := range strings.Lines(string(out)) {
		var s string
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("python output %q: %v", line, err)
		}
		got = append(got, s)
	}
	return got
}

// TestPythonReadsWhatPythonReads compares, input by input, what the
// extractor finds with what Python's email parser finds in the same bytes.
// Where Python finds no Name or Version, the extractor must return an error.
func TestPythonReadsWhatPythonReads(t *testing.T) {
	cases := []struct{ name, in string }{
		{"plain", "Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\n\nbody"},
		{"upper-case names", "METADATA-VERSION: 2.1\nNAME: requests\nVERSION: 2.28.1\n"},
		{"lower-case names", "name: requests\nversion: 2.28.1\n"},
		{"first of repeated headers", "Name: requests\nVersion: 2.28.1\nversion: 9.9.9\nName: other\n"},
		{"CR line ends", "Metadata-Version: 2.1\rName: requests\rVersion: 2.28.1\r\rName: body\r"},
		{"CRLF", "Metadata-Version: 2.1\r\nName: requests\r\nVersion: 2.28.1\r\n"},
		{"blank-looking line continues", "Name: requests\n \nVersion: 2.28.1\n"},
		{"space before colon ends headers", "Metadata-Version: 2.1\nName : requests\nName: x\nVersion: 1\n"},
		{"headers in the body", "Metadata-Version: 2.1\n\nName: requests\nVersion: 1\n"},
		{"BOM", "\ufeffMetadata-Version: 2.1\nName: requests\nVersion: 2.28.1\n"},
		{"envelope line", "From someone\nName: requests\nVersion: 2.28.1\n"},
		{"empty name header skipped", ": x\nName: requests\nVersion: 2.28.1\n"},
		{"first line a continuation", " Name: x\nName: requests\nVersion: 2.28.1\n"},
		{"value on the next line", "Name:\n requests\nVersion: 2.28.1\n"},
		{"non-ASCII line ends headers", "Name: requests\nSummary\u00e9: x\nVersion: 1\n"},
		{"no version", "Name: requests\n"},
	}
	inputs := make([][]byte, len(cases))
	for i, c := range cases {
		inputs[i] = []byte(c.in)
	}
	want := pythonReads(t, inputs)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkgs, err := Python{}.Extract("/x.dist-info/METADATA", inputs[i])
			checkExtractResult(t, pkgs, err)
			got := ""
			if len(pkgs) == 1 {
				got = pkgs[0].Name + " " + pkgs[0].Version
			}
			if got != want[i] {
				t.Errorf("got %q (error %v), python reads %q", got, err, want[i])
			}
			if got == "" && err == nil {
				t.Error("no package and no error")
			}
		})
	}
}

func FuzzPython(f *testing.F) {
	f.Add([]byte("Metadata-Version: 2.1\r\nName: Flask\r\nVersion: 2.2.2\r\n\r\nbody"))
	f.Add([]byte("From x\nname:\n a\n b\nVERSION: 1\rName: y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := Python{}.Extract("/x.dist-info/METADATA", data)
		checkExtractResult(t, pkgs, err)
		if (len(pkgs) == 0) == (err == nil) || len(pkgs) > 1 {
			t.Fatalf("packages %+v, error %v", pkgs, err)
		}
		if len(pkgs) == 1 && (pkgs[0].Name == "" || pkgs[0].Version == "") {
			t.Fatalf("incomplete package %+v", pkgs[0])
		}
	})
}
