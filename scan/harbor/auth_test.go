package harbor_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/harbor"
)

// The adapter API with auth answers only callers presenting its Bearer token or Basic
// credential; the others get 401, the spec's ErrorResponse and a challenge per scheme.
func TestServerAuth(t *testing.T) {
	t.Parallel()
	open := harbor.NewServer(harbor.NewBuiltin(t.TempDir()), harbor.WithAllowedRegistries("http://127.0.0.1:1"))
	t.Cleanup(open.Close)
	both := harbor.NewServer(harbor.NewBuiltin(t.TempDir()), harbor.WithAllowedRegistries("http://127.0.0.1:1"),
		harbor.WithAuth(harbor.ServerAuth{BearerToken: "t0ken", Username: "harbor", Password: "pw"}))
	t.Cleanup(both.Close)
	bearerOnly := harbor.NewServer(harbor.NewBuiltin(t.TempDir()), harbor.WithAuth(harbor.ServerAuth{BearerToken: "t0ken"}))
	t.Cleanup(bearerOnly.Close)

	ask := func(h http.Handler, auth func(*http.Request)) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/metadata", nil)
		if auth != nil {
			auth(req)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	header := func(v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set("Authorization", v) } }
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }

	if rec := ask(open, nil); rec.Code != http.StatusOK {
		t.Fatalf("without auth configured: %d", rec.Code)
	}
	for name, auth := range map[string]func(*http.Request){"bearer": header("Bearer t0ken"), "bearer, other case": header("bearer t0ken"), "basic": basic("harbor", "pw")} {
		if rec := ask(both, auth); rec.Code != http.StatusOK {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	for name, c := range map[string]struct {
		h    http.Handler
		auth func(*http.Request)
	}{
		"none":                    {both, nil},
		"wrong token":             {both, header("Bearer t0ke")},
		"token with a suffix":     {both, header("Bearer t0kenX")},
		"wrong password":          {both, basic("harbor", "p")},
		"wrong user":              {both, basic("harbo", "pw")},
		"token as basic":          {both, basic("t0ken", "")},
		"basic where only bearer": {bearerOnly, basic("harbor", "pw")},
		"empty bearer":            {bearerOnly, header("Bearer ")},
		"other scheme":            {both, header("Digest t0ken")},
	} {
		rec := ask(c.h, c.auth)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("Content-Type") != harbor.MimeError {
			t.Errorf("%s: %d %q, want 401 typed %s", name, rec.Code, rec.Header().Get("Content-Type"), harbor.MimeError)
			continue
		}
		var e harbor.ErrorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error.Message, "requires authentication") {
			t.Errorf("%s: body %s", name, rec.Body)
		}
		ch := strings.Join(rec.Header().Values("WWW-Authenticate"), ", ")
		if !strings.Contains(ch, "Bearer realm=") || (c.h == both) != strings.Contains(ch, "Basic realm=") {
			t.Errorf("%s: challenge %q", name, ch)
		}
	}
}

// FuzzServerAuth feeds the adapter API's Authorization check (outside input): only the
// configured credentials pass, nothing panics.
func FuzzServerAuth(f *testing.F) {
	for _, s := range []string{"Bearer t0ken", "Basic aGFyYm9yOnB3", "bearer t0ken ", "Basic", "Bearer", "Basic !!", ""} {
		f.Add(s)
	}
	srv := harbor.NewServer(harbor.NewBuiltin(f.TempDir()), harbor.WithAuth(harbor.ServerAuth{BearerToken: "t0ken", Username: "harbor", Password: "pw"}))
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, h string) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/metadata", nil)
		req.Header["Authorization"] = []string{h}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			scheme, v, _ := strings.Cut(strings.TrimSpace(h), " ")
			ok := strings.EqualFold(scheme, "bearer") && strings.TrimSpace(v) == "t0ken"
			if u, p, isBasic := req.BasicAuth(); isBasic && u == "harbor" && p == "pw" {
				ok = true
			}
			if !ok {
				t.Fatalf("Authorization %q let in (%d)", h, rec.Code)
			}
		}
	})
}
