package main

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/scantest"
)

// rawManifestLayout writes an OCI layout holding img's blobs and, under tag, the manifest
// bytes edit makes of img's manifest, served as mediaType.
func rawManifestLayout(t *testing.T, img v1.Image, tag string, mediaType types.MediaType, edit func(map[string]any)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteImage(img); err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h, size, err := v1.SHA256(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(body))); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendDescriptor(v1.Descriptor{MediaType: mediaType, Digest: h, Size: size,
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A manifest whose media type and shape disagree is refused with what is wrong, never
// scanned as the shape a consumer would not see (an empty "index": exit 0).
func TestScanRefusesManifestsWhoseTypeAndShapeDisagree(t *testing.T) {
	dbDir := scantest.GoDB(t)
	key, _ := keyPEMs(t)
	img, err := mutate.AppendLayers(empty.Image, scantest.FilesLayer(t, map[string]string{"app/deploy.pem": key}))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	tests := []struct {
		name      string
		mediaType types.MediaType
		edit      func(map[string]any)
		want      string
	}{
		{"image carrying manifests", types.OCIManifestSchema1, func(m map[string]any) { m["manifests"] = []any{} },
			`an image manifest (application/vnd.oci.image.manifest.v1+json) carrying "manifests"`},
		{"index carrying config and layers", types.OCIImageIndex, func(m map[string]any) {
			m["mediaType"] = string(types.OCIImageIndex)
			m["manifests"] = []any{}
		}, `an image index (application/vnd.oci.image.index.v1+json) carrying "config" or "layers"`},
		{"unknown type with both", "application/x-unknown", func(m map[string]any) {
			m["mediaType"] = "application/x-unknown"
			m["manifests"] = []any{}
		}, `a manifest of media type "application/x-unknown" carrying both "manifests" and "config" or "layers"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := rawManifestLayout(t, img, "1.0.0", tt.mediaType, tt.edit)
			var out, errs bytes.Buffer
			code := run([]string{"scan", "--db", dbDir, "--fail-on-secrets", "oci:" + dir + ":1.0.0"}, &out, &errs)
			if code != 1 || !strings.Contains(errs.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q\nstdout: %s", code, errs.String(), tt.want, out.String())
			}
		})
	}
}

// A layer the analyzer cannot read makes the scan incomplete: --fail-on and
// --fail-on-secrets exit 3 (not 0: what was not read may hold what they look for), and
// every output says so.
func TestIncompleteScanExitsThreeAndSaysSo(t *testing.T) {
	dbDir := scantest.GoDB(t)
	key, _ := keyPEMs(t)
	img, err := mutate.AppendLayers(empty.Image,
		scantest.FilesLayer(t, map[string]string{"app/main.py": "print('hello')\n"}),
		scantest.HugeWindowZstdLayer(t, map[string]string{"app/deploy.pem": key}))
	if err != nil {
		t.Fatal(err)
	}
	ref := "oci:" + imageLayout(t, img, "1.0.0") + ":1.0.0"
	scan := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(append(append([]string{"scan", "--db", dbDir}, args...), ref), &out, &errs)
		return code, out.String(), errs.String()
	}
	for _, flags := range [][]string{{"--fail-on", "critical"}, {"--fail-on-secrets"}, {"--fail-on", "low", "--fail-on-secrets"}} {
		code, _, errs := scan(flags...)
		if code != 3 || !strings.Contains(errs, "the scan is incomplete") || !strings.Contains(errs, "zstd") {
			t.Errorf("%v: exit %d, stderr %q; want 3, saying the scan is incomplete and why", flags, code, errs)
		}
	}
	if code, out, errs := scan(); code != 0 || !strings.Contains(out, "INCOMPLETE: ") {
		t.Errorf("no --fail-on flag: exit %d (want 0), table:\n%s\n%s", code, out, errs)
	}

	_, out, _ := scan("--output", "json")
	var doc struct {
		Incomplete bool `json:"incomplete"`
		Manifests  []struct {
			Incomplete bool `json:"incomplete"`
			Layers     []struct {
				Number     int    `json:"number"`
				Blob       string `json:"blob"`
				Incomplete bool   `json:"incomplete"`
				Reason     string `json:"reason"`
			} `json:"layers"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.Incomplete || len(doc.Manifests) != 1 || !doc.Manifests[0].Incomplete {
		t.Fatalf("json (%v):\n%s", err, out)
	}
	ls := doc.Manifests[0].Layers
	if len(ls) != 2 || ls[0].Incomplete || !ls[1].Incomplete || ls[1].Number != 2 || !strings.Contains(ls[1].Reason, "zstd") || !strings.HasPrefix(ls[1].Blob, "sha256:") {
		t.Errorf("json layers = %+v, want layer 2 incomplete with its reason and blob", ls)
	}

	_, out, _ = scan("--output", "sarif")
	var sarif struct {
		Runs []struct {
			Invocations []struct {
				ExecutionSuccessful        *bool `json:"executionSuccessful"`
				ToolExecutionNotifications []struct {
					Level   string `json:"level"`
					Message struct {
						Text string `json:"text"`
					} `json:"message"`
				} `json:"toolExecutionNotifications"`
			} `json:"invocations"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil || len(sarif.Runs) != 1 || len(sarif.Runs[0].Invocations) != 1 {
		t.Fatalf("sarif (%v):\n%s", err, out)
	}
	inv := sarif.Runs[0].Invocations[0]
	if inv.ExecutionSuccessful == nil || *inv.ExecutionSuccessful || len(inv.ToolExecutionNotifications) != 1 ||
		inv.ToolExecutionNotifications[0].Level != "error" || !strings.Contains(inv.ToolExecutionNotifications[0].Message.Text, "layer 2 (blob sha256:") {
		t.Errorf("sarif invocation = %+v, want executionSuccessful false and a notification naming layer 2", inv)
	}
}

// Terminal escape sequences in file names reach the table escaped.
func TestScanTableEscapesControlCharacters(t *testing.T) {
	dbDir := scantest.GoDB(t)
	key, _ := keyPEMs(t)
	hostile := "app/\x1b[2J\x1b]0;pwned\x07\u202ekey.pem"
	img, err := mutate.AppendLayers(empty.Image, scantest.FilesLayer(t, map[string]string{hostile: key}))
	if err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := run([]string{"scan", "--db", dbDir, "oci:" + imageLayout(t, img, "1.0.0") + ":1.0.0"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	table := out.String()
	for _, c := range []string{"\x1b", "\x07", "\u202e"} {
		if strings.Contains(table, c) {
			t.Errorf("the table prints %q raw:\n%q", c, table)
		}
	}
	if want := `/app/\x1b[2J\x1b]0;pwned\x07\u202ekey.pem:1`; !strings.Contains(table, want) {
		t.Errorf("table lacks the escaped path %s:\n%s", want, table)
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain /usr/lib/libssl.so.3 ü 日本", "plain /usr/lib/libssl.so.3 ü 日本"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"a\nb\rc\td", `a\x0ab\x0dc\x09d`},
		{"del\x7f c1\u009b", `del\x7f c1\x9b`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"rtl \u202e zw \u200b iso \u2066 ls \u2028", `rtl \u202e zw \u200b iso \u2066 ls \u2028`},
		{`forged \x1b`, `forged \\x1b`},
	}
	for _, tt := range tests {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
