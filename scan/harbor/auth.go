package harbor

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// ServerAuth is what the adapter API accepts from its caller (Harbor's scanner
// registration sends a Basic or Bearer Authorization): a Bearer token, a Basic user and
// password, or both. The zero value accepts anyone.
type ServerAuth struct {
	// BearerToken, when set, is accepted as "Authorization: Bearer <token>".
	BearerToken string
	// Username and Password, when Username is set, are accepted as Basic.
	Username string
	Password string
}

// enabled reports whether a credential is required.
func (a ServerAuth) enabled() bool { return a.BearerToken != "" || a.Username != "" }

// WithAuth makes the server require one of the credentials of a on every request;
// anything else is answered 401 with the spec's ErrorResponse and a WWW-Authenticate
// challenge naming the schemes a accepts. Credentials are compared in constant time.
func WithAuth(a ServerAuth) ServerOption { return func(s *Server) { s.auth = a } }

// authorized reports whether r carries a credential s accepts.
func (s *Server) authorized(r *http.Request) bool {
	if !s.auth.enabled() {
		return true
	}
	h := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(strings.TrimSpace(h), " ")
	value = strings.TrimSpace(value)
	switch {
	case strings.EqualFold(scheme, "Bearer") && s.auth.BearerToken != "":
		return equalSecret(value, s.auth.BearerToken)
	case strings.EqualFold(scheme, "Basic") && s.auth.Username != "":
		user, pass, ok := r.BasicAuth()
		// Both compared whatever the first gives, so the time says nothing of which failed.
		u, p := equalSecret(user, s.auth.Username), equalSecret(pass, s.auth.Password)
		return ok && u && p
	}
	return false
}

// equalSecret compares a and b in time independent of their content and length (both
// are hashed first).
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// unauthorized answers 401 with a challenge for each scheme the server accepts.
func (s *Server) unauthorized(w http.ResponseWriter) {
	if s.auth.BearerToken != "" {
		w.Header().Add("WWW-Authenticate", `Bearer realm="portcullis scanner adapter"`)
	}
	if s.auth.Username != "" {
		w.Header().Add("WWW-Authenticate", `Basic realm="portcullis scanner adapter"`)
	}
	writeError(w, http.StatusUnauthorized, "this scanner adapter requires authentication: register it in Harbor with the Bearer token or Basic credential configured in scan.adapterAPI.auth")
}
