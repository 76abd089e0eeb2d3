package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/scan/inventory"
	"github.com/portcullis-dev/portcullis/scan/match"
)

// A finding whose record's range could not be evaluated says so in the
// table and in SARIF, rather than passing for a finding with no fix.
func TestScanOutputSaysUndecided(t *testing.T) {
	f := match.Finding{Package: inventory.Package{Ecosystem: "Debian", Name: "zlib1g", Version: "1:1.2.13.dfsg-1"},
		ID: "DEBIAN-CVE-2099-0001", Ecosystem: "Debian:12",
		Undecided: `ECOSYSTEM range: "x:1.3-1" is not a Debian version: invalid version`}
	targets := []scanTarget{{Digest: "sha256:" + strings.Repeat("a", 64), Report: gate.Report{Findings: []match.Finding{f}}}}
	var out bytes.Buffer
	printScanTable(&out, "oci:img", targets[0].Digest, targets)
	if !strings.Contains(out.String(), "(undecided)") ||
		!strings.Contains(out.String(), `UNDECIDED: DEBIAN-CVE-2099-0001 zlib1g: ECOSYSTEM range: "x:1.3-1" is not a Debian version`) {
		t.Errorf("table does not say undecided:\n%s", out.String())
	}
	raw, err := json.Marshal(sarifOf("oci:img", targets))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `could not be evaluated: ECOSYSTEM range: \"x:1.3-1\" is not a Debian version`) {
		t.Errorf("SARIF does not say undecided: %s", raw)
	}
}
