package harbor_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/harbor"
)

// FuzzParseReport feeds adapter reports to the parser and the mapping: never a panic, and
// a parsed report maps every vulnerability.
func FuzzParseReport(f *testing.F) {
	for _, name := range []string{"trivy-report-1.0.json", "trivy-report-cvss.json", "trivy-metadata.json"} {
		f.Add(testdata(f, name))
	}
	f.Add([]byte(`{"vulnerabilities":[{"id":"x","package":"p","preferred_cvss":{"vector_v3":"CVSS:3.1/AV:N"},"vendor_attributes":[1,{"key":"ecosystem","value":2}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := harbor.ParseReport(body)
		if err != nil {
			return
		}
		if got := harbor.Findings(rep); len(got) != len(rep.Vulnerabilities) {
			t.Fatalf("%d findings of %d vulnerabilities", len(got), len(rep.Vulnerabilities))
		}
	})
}

// FuzzScanRequest posts arbitrary bodies to the adapter: each is accepted (202 with an
// id) or refused with the spec's status and ErrorResponse, never a panic. Scans may only
// pull from a closed loopback port.
func FuzzScanRequest(f *testing.F) {
	srv := harbor.NewServer(harbor.NewBuiltin(f.TempDir()), harbor.WithAllowedRegistries("http://127.0.0.1:1"))
	f.Cleanup(srv.Close)
	f.Add(`{"registry":{"url":"http://127.0.0.1:1","authorization":"Basic cjpw"},"artifact":{"repository":"library/mongo","digest":"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"}}`)
	f.Add(`{"registry":{"url":"https://core.harbor.domain"},"artifact":{"repository":"a/B","digest":"sha256:"}}`)
	f.Add(`THIS AIN'T PARSE`)
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/scan", strings.NewReader(body)))
		switch rec.Code {
		case http.StatusAccepted:
			var sr harbor.ScanResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &sr); err != nil || sr.ID == "" {
				t.Fatalf("202 without an id: %s", rec.Body)
			}
		case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusNotImplemented,
			http.StatusInternalServerError: // 500: as many scans kept as it keeps (WithMaxScans)
			var e harbor.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Message == "" || rec.Header().Get("Content-Type") != harbor.MimeError {
				t.Fatalf("%d without an ErrorResponse: %s", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
