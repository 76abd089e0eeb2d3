package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// vulnerableLayout writes an OCI layout holding one image (tag 1.0.0) whose layer carries
// a Go binary with known advisories, and a GitHub token in its Env.
func vulnerableLayout(t *testing.T) string {
	t.Helper()
	bin := scantest.VulnerableGoBinary(t)
	l := scantest.FileLayer(t, "app/svc", bin)
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, v1.Config{Env: []string{"GH_TOKEN=ghp_Qm7Tz2Lk9Vx4Rw8Ny3Pb6Hj1Sd5Fg0Ac2Ze7"}}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1.0.0"})); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestScanCommand(t *testing.T) {
	dbDir := scantest.GoDB(t)
	dir := vulnerableLayout(t)
	run := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(append([]string{"scan", "--db", dbDir}, args...), &out, &errs)
		return code, out.String(), errs.String()
	}

	code, out, errs := run("oci:" + dir + ":1.0.0")
	if code != 0 {
		t.Fatalf("table: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"GO-2022-1059", "golang.org/x/text", "0.3.5", "0.3.8", "runs as root", "secret:"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Qm7Tz2Lk9Vx4Rw8Ny3Pb6Hj1Sd5Fg0Ac2Ze7") {
		t.Error("the table shows the token itself")
	}

	code, out, _ = run("--output", "sarif", "oci:"+dir)
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &sarif) != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 {
		t.Fatalf("sarif: exit %d\n%s", code, out)
	}
	ids := map[string]bool{}
	for _, r := range sarif.Runs[0].Results {
		ids[r.RuleID] = true
	}
	if !ids["GO-2022-1059"] || !ids["GO-2021-0113"] {
		t.Errorf("sarif results %v lack the x/text advisories", ids)
	}

	code, out, _ = run("--output", "json", "oci:"+dir)
	var doc struct {
		Manifests []struct {
			Report struct {
				Findings []json.RawMessage `json:"findings"`
			} `json:"report"`
			Secrets []struct{ Type string } `json:"secrets"`
		} `json:"manifests"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Manifests) != 1 || len(doc.Manifests[0].Report.Findings) == 0 || len(doc.Manifests[0].Secrets) == 0 {
		t.Fatalf("json: exit %d\n%s", code, out)
	}

	if code, _, _ := run("--fail-on", "high", "oci:"+dir); code != 1 {
		t.Errorf("--fail-on high with findings: exit %d, want 1", code)
	}
	if code, _, errs := run("oci:" + filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errs, "not an OCI image layout") {
		t.Errorf("missing layout: exit %d %q", code, errs)
	}
	if code, _, _ := run("--output", "yaml", "oci:"+dir); code != 2 {
		t.Errorf("bad --output: exit %d, want 2", code)
	}
}
