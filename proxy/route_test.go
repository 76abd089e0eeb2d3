package proxy_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/proxy"
)

const (
	dgst    = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	dgst512 = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)

func TestParseRoute(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 255)
	tests := []struct {
		path string
		want proxy.Route
	}{
		{"/v2", proxy.Route{Kind: proxy.KindBase}},
		{"/v2/", proxy.Route{Kind: proxy.KindBase}},
		{"/v2/_catalog", proxy.Route{Kind: proxy.KindCatalog}},
		{"/v2/alpine/tags/list", proxy.Route{Kind: proxy.KindTags, Name: "alpine"}},
		{"/v2/team/app/tags/list", proxy.Route{Kind: proxy.KindTags, Name: "team/app"}},
		{"/v2/alpine/manifests/3.20", proxy.Route{Kind: proxy.KindManifest, Name: "alpine", Reference: "3.20"}},
		{"/v2/alpine/manifests/" + dgst, proxy.Route{Kind: proxy.KindManifest, Name: "alpine", Reference: dgst}},
		{"/v2/alpine/manifests/" + dgst512, proxy.Route{Kind: proxy.KindManifest, Name: "alpine", Reference: dgst512}},
		{"/v2/a/b/c/d/manifests/v1_RC-2.x", proxy.Route{Kind: proxy.KindManifest, Name: "a/b/c/d", Reference: "v1_RC-2.x"}},
		{"/v2/a/manifests/_underscore", proxy.Route{Kind: proxy.KindManifest, Name: "a", Reference: "_underscore"}},
		{"/v2/a/manifests/" + strings.Repeat("t", 128), proxy.Route{Kind: proxy.KindManifest, Name: "a", Reference: strings.Repeat("t", 128)}},
		{"/v2/alpine/blobs/" + dgst, proxy.Route{Kind: proxy.KindBlob, Name: "alpine", Reference: dgst}},
		{"/v2/alpine/blobs/uploads/", proxy.Route{Kind: proxy.KindUploadStart, Name: "alpine"}},
		{"/v2/alpine/blobs/uploads", proxy.Route{Kind: proxy.KindUploadStart, Name: "alpine"}},
		{"/v2/alpine/blobs/uploads/0a1b-2c3d", proxy.Route{Kind: proxy.KindUpload, Name: "alpine", UploadID: "0a1b-2c3d"}},
		{"/v2/alpine/referrers/" + dgst, proxy.Route{Kind: proxy.KindReferrers, Name: "alpine", Reference: dgst}},
		{"/v2/" + long + "/tags/list", proxy.Route{Kind: proxy.KindTags, Name: long}},
		{"/v2/a.b_c__d-e---f/tags/list", proxy.Route{Kind: proxy.KindTags, Name: "a.b_c__d-e---f"}},

		// Names whose components are route keywords: the route is read from the tail.
		{"/v2/manifests/manifests/latest", proxy.Route{Kind: proxy.KindManifest, Name: "manifests", Reference: "latest"}},
		{"/v2/blobs/blobs/" + dgst, proxy.Route{Kind: proxy.KindBlob, Name: "blobs", Reference: dgst}},
		{"/v2/tags/tags/list", proxy.Route{Kind: proxy.KindTags, Name: "tags"}},
		{"/v2/a/manifests/tags/list", proxy.Route{Kind: proxy.KindTags, Name: "a/manifests"}},
		{"/v2/a/tags/list/manifests/v1", proxy.Route{Kind: proxy.KindManifest, Name: "a/tags/list", Reference: "v1"}},
		{"/v2/a/blobs/uploads/manifests/v1", proxy.Route{Kind: proxy.KindManifest, Name: "a/blobs/uploads", Reference: "v1"}},
		{"/v2/a/manifests/v1/blobs/uploads/", proxy.Route{Kind: proxy.KindUploadStart, Name: "a/manifests/v1"}},
		{"/v2/blobs/uploads/blobs/uploads/x", proxy.Route{Kind: proxy.KindUpload, Name: "blobs/uploads", UploadID: "x"}},
		{"/v2/referrers/referrers/" + dgst, proxy.Route{Kind: proxy.KindReferrers, Name: "referrers", Reference: dgst}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			got, err := proxy.ParseRoute(tt.path)
			if err != nil {
				t.Fatalf("ParseRoute(%q): %v", tt.path, err)
			}
			if got != tt.want {
				t.Errorf("ParseRoute(%q) = %+v, want %+v", tt.path, got, tt.want)
			}
			if got.IsDigest() != strings.HasPrefix(tt.want.Reference, "sha") {
				t.Errorf("IsDigest() = %v for reference %q", got.IsDigest(), got.Reference)
			}
		})
	}
}

func TestParseRouteErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		path   string
		status int
		code   proxy.Code
	}{
		{"outside /v2", "/healthz", http.StatusNotFound, proxy.CodeUnsupported},
		{"v2 prefix without slash", "/v2x/a/tags/list", http.StatusNotFound, proxy.CodeUnsupported},
		{"root", "/", http.StatusNotFound, proxy.CodeUnsupported},
		{"empty", "", http.StatusNotFound, proxy.CodeUnsupported},
		{"unknown suffix", "/v2/alpine/whatever", http.StatusNotFound, proxy.CodeUnsupported},
		{"bare name", "/v2/alpine", http.StatusNotFound, proxy.CodeUnsupported},
		{"catalog with slash", "/v2/_catalog/", http.StatusNotFound, proxy.CodeUnsupported},
		{"manifests without reference segment", "/v2/manifests/x", http.StatusNotFound, proxy.CodeUnsupported},
		{"tags without list", "/v2/a/tags/", http.StatusNotFound, proxy.CodeUnsupported},

		{"name with ..", "/v2/a/../b/manifests/v1", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"name is ..", "/v2/../manifests/v1", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"name with .", "/v2/./a/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"uppercase name", "/v2/Alpine/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"uppercase component", "/v2/team/App/manifests/v1", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"name over 255", "/v2/" + strings.Repeat("a", 256) + "/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"name over 255 with components", "/v2/" + strings.Repeat("abcdefg/", 32) + "a/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"empty name", "/v2//tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"empty component", "/v2/a//b/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"leading slash component", "/v2//a/manifests/v1", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"trailing separator", "/v2/a-/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"leading separator", "/v2/-a/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"triple underscore", "/v2/a___b/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"double dot separator", "/v2/a..b/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"name with colon", "/v2/host:5000/a/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"name with space", "/v2/a b/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"catalog as a name", "/v2/_catalog/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},
		{"unicode name", "/v2/caf\u00e9/tags/list", http.StatusBadRequest, proxy.CodeNameInvalid},

		{"empty tag", "/v2/a/manifests/", http.StatusBadRequest, proxy.CodeTagInvalid},
		{"tag starting with dot", "/v2/a/manifests/.hidden", http.StatusBadRequest, proxy.CodeTagInvalid},
		{"tag starting with dash", "/v2/a/manifests/-v1", http.StatusBadRequest, proxy.CodeTagInvalid},
		{"tag of 129 characters", "/v2/a/manifests/" + strings.Repeat("t", 129), http.StatusBadRequest, proxy.CodeTagInvalid},
		{"tag with plus", "/v2/a/manifests/v1+build", http.StatusBadRequest, proxy.CodeTagInvalid},
		{"tag with percent", "/v2/a/manifests/v%41", http.StatusBadRequest, proxy.CodeTagInvalid},
		{"tag with space", "/v2/a/manifests/v 1", http.StatusBadRequest, proxy.CodeTagInvalid},

		{"digest without hex", "/v2/a/manifests/sha256:", http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"digest too short", "/v2/a/manifests/sha256:abc", http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"digest uppercase algorithm", "/v2/a/blobs/SHA256:" + dgst[7:], http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"digest upper hex", "/v2/a/blobs/sha256:" + strings.ToUpper(dgst[7:]), http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"digest unknown algorithm", "/v2/a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"digest sha512 with sha256 length", "/v2/a/blobs/sha512:" + dgst[7:], http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"blob tag instead of digest", "/v2/a/blobs/latest", http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"blob empty digest", "/v2/a/blobs/", http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"referrers tag", "/v2/a/referrers/latest", http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"referrers digest with extra", "/v2/a/referrers/" + dgst + "0", http.StatusBadRequest, proxy.CodeDigestInvalid},
		{"manifest digest non-hex", "/v2/a/manifests/sha256:" + strings.Repeat("g", 64), http.StatusBadRequest, proxy.CodeDigestInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := proxy.ParseRoute(tt.path)
			if err == nil {
				t.Fatalf("ParseRoute(%q) = %+v, want %s error", tt.path, got, tt.code)
			}
			var e *proxy.Error
			if !errors.As(err, &e) {
				t.Fatalf("ParseRoute(%q) error %T %v, want *proxy.Error", tt.path, err, err)
			}
			if e.Status != tt.status || e.Code != tt.code {
				t.Errorf("ParseRoute(%q) = %d %s (%s), want %d %s", tt.path, e.Status, e.Code, e.Message, tt.status, tt.code)
			}
			if e.Message == "" {
				t.Errorf("ParseRoute(%q): error has no message", tt.path)
			}
			if got != (proxy.Route{}) {
				t.Errorf("ParseRoute(%q) returned %+v alongside an error", tt.path, got)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"library/alpine", true},
		{"a0/b1/c2", true},
		{"a.b", true},
		{"a_b", true},
		{"a__b", true},
		{"a-b", true},
		{"a--b", true},
		{strings.Repeat("a", proxy.MaxNameLength), true},
		{strings.Repeat("a/", 127) + "a", true}, // 255 characters
		{"", false},
		{strings.Repeat("a", proxy.MaxNameLength+1), false},
		{"A", false},
		{"a/", false},
		{"/a", false},
		{"a//b", false},
		{"..", false},
		{"a/../b", false},
		{".a", false},
		{"a.", false},
		{"a_", false},
		{"a___b", false},
		{"a.-b", false},
		{"a:b", false},
		{"a@b", false},
	}
	for _, tt := range tests {
		err := proxy.ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		var e *proxy.Error
		if err != nil && (!errors.As(err, &e) || e.Code != proxy.CodeNameInvalid || e.Status != http.StatusBadRequest) {
			t.Errorf("ValidateName(%q) = %#v, want 400 NAME_INVALID", tt.name, err)
		}
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	want := map[proxy.Kind]string{
		proxy.KindBase: "base", proxy.KindCatalog: "catalog", proxy.KindTags: "tags",
		proxy.KindManifest: "manifest", proxy.KindBlob: "blob", proxy.KindUploadStart: "upload_start",
		proxy.KindUpload: "upload", proxy.KindReferrers: "referrers", 0: "unknown", 99: "unknown",
	}
	for k, s := range want {
		if got := k.String(); got != s {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, s)
		}
	}
}

// routePath reassembles a route into the canonical path that addresses it.
func routePath(r proxy.Route) string {
	switch r.Kind {
	case proxy.KindBase:
		return "/v2/"
	case proxy.KindCatalog:
		return "/v2/_catalog"
	case proxy.KindTags:
		return "/v2/" + r.Name + "/tags/list"
	case proxy.KindManifest:
		return "/v2/" + r.Name + "/manifests/" + r.Reference
	case proxy.KindBlob:
		return "/v2/" + r.Name + "/blobs/" + r.Reference
	case proxy.KindUploadStart:
		return "/v2/" + r.Name + "/blobs/uploads/"
	case proxy.KindUpload:
		return "/v2/" + r.Name + "/blobs/uploads/" + r.UploadID
	case proxy.KindReferrers:
		return "/v2/" + r.Name + "/referrers/" + r.Reference
	}
	return ""
}

// FuzzParseRoute checks that ParseRoute never panics, that every route it accepts names
// a valid repository (or none, for base and catalog) and that the route reassembles into
// a path that parses to the same route. Seeds live in testdata/fuzz/FuzzParseRoute.
func FuzzParseRoute(f *testing.F) {
	f.Add("/v2/library/alpine/manifests/latest")
	f.Fuzz(func(t *testing.T, path string) {
		r, err := proxy.ParseRoute(path)
		if err != nil {
			var e *proxy.Error
			if !errors.As(err, &e) {
				t.Fatalf("ParseRoute(%q) error is %T, want *proxy.Error", path, err)
			}
			if e.Status < 400 || e.Status > 499 || e.Code == "" {
				t.Fatalf("ParseRoute(%q) error %d %q, want a 4xx with a code", path, e.Status, e.Code)
			}
			return
		}
		switch r.Kind {
		case proxy.KindBase, proxy.KindCatalog:
			if r.Name != "" || r.Reference != "" || r.UploadID != "" {
				t.Fatalf("ParseRoute(%q) = %+v: base and catalog carry no name", path, r)
			}
		case proxy.KindTags, proxy.KindManifest, proxy.KindBlob, proxy.KindUploadStart, proxy.KindUpload, proxy.KindReferrers:
			if err := proxy.ValidateName(r.Name); err != nil {
				t.Fatalf("ParseRoute(%q) = %+v with an invalid name: %v", path, r, err)
			}
		default:
			t.Fatalf("ParseRoute(%q) = %+v: unknown kind", path, r)
		}
		if r.Kind == proxy.KindUpload && (r.UploadID == "" || strings.Contains(r.UploadID, "/")) {
			t.Fatalf("ParseRoute(%q) = %+v: upload id must be one non-empty segment", path, r)
		}
		if (r.Kind == proxy.KindBlob || r.Kind == proxy.KindReferrers) && !r.IsDigest() {
			t.Fatalf("ParseRoute(%q) = %+v: blob and referrers references are digests", path, r)
		}
		again, err := proxy.ParseRoute(routePath(r))
		if err != nil {
			t.Fatalf("ParseRoute(%q) = %+v, but its path %q fails: %v", path, r, routePath(r), err)
		}
		if again != r {
			t.Fatalf("ParseRoute(%q) = %+v, but its path %q parses to %+v", path, r, routePath(r), again)
		}
	})
}
