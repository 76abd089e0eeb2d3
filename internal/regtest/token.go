package regtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenServer is a Docker registry token server (the "realm" of a Bearer challenge) for
// tests. It checks basic credentials itself and issues short-lived JWTs, signed with a
// freshly generated key, that grant every scope the client asks for.
type TokenServer struct {
	// URL is the token endpoint, the realm the registry's challenges name.
	URL string
	// Service is the audience of the tokens and the registry's service name.
	Service string
	// Issuer is the iss claim the registry trusts.
	Issuer string

	user, password string
	key            *ecdsa.PrivateKey
	certDER        []byte

	mu       sync.Mutex
	issued   int
	refused  int
	scopesOK []string
}

// TokenAuth starts a token server that accepts user and password, and returns it with an
// option for Registry that makes the registry demand its tokens (distribution's "token"
// auth: realm, service, issuer and a root certificate bundle holding the signing
// certificate). Tokens carry the certificate in their x5c header, the way distribution
// verifies them against rootcertbundle. The server stops when the test ends.
func TokenAuth(tb testing.TB, user, password string) (func(*configuration.Configuration), *TokenServer) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "portcullis test token issuer"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	bundle := filepath.Join(tb.TempDir(), "token-root.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	ts := &TokenServer{
		Service:  "portcullis-test-registry",
		Issuer:   "portcullis-test-issuer",
		user:     user,
		password: password,
		key:      key,
		certDER:  der,
	}
	srv := httptest.NewServer(http.HandlerFunc(ts.serve))
	tb.Cleanup(srv.Close)
	// The realm names the server as localhost rather than 127.0.0.1: clients such as
	// go-containerregistry refuse a realm that is a loopback or private IP literal (a
	// guard against SSRF) unless it is the registry's own host.
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	ts.URL = "http://localhost:" + port + "/token"
	opt := func(c *configuration.Configuration) {
		c.Auth = configuration.Auth{"token": configuration.Parameters{
			"realm":          ts.URL,
			"service":        ts.Service,
			"issuer":         ts.Issuer,
			"rootcertbundle": bundle,
		}}
	}
	return opt, ts
}

// Issued returns how many tokens the server has handed out.
func (ts *TokenServer) Issued() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.issued
}

// Refused returns how many token requests had missing or wrong credentials.
func (ts *TokenServer) Refused() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.refused
}

// Scopes returns every scope granted so far, in order.
func (ts *TokenServer) Scopes() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.scopesOK...)
}

// Token issues a token for scopes ("repository:name:pull,push") without checking
// credentials, for tests that want to present a bearer token directly.
func (ts *TokenServer) Token(scopes ...string) (string, error) {
	return ts.sign(ts.user, scopes)
}

// resourceActions is one entry of the access claim distribution's token auth reads.
type resourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// claims are the JWT claims distribution's token auth verifies.
type claims struct {
	jwt.Claims
	Access []resourceActions `json:"access"`
}

func (ts *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" || r.Method != http.MethodGet {
		http.Error(w, "only GET /token", http.StatusNotFound)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != ts.user || pass != ts.password {
		ts.mu.Lock()
		ts.refused++
		ts.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="portcullis-test-token"`)
		http.Error(w, `{"details":"wrong username or password"}`, http.StatusUnauthorized)
		return
	}
	if svc := r.URL.Query().Get("service"); svc != ts.Service {
		http.Error(w, "unknown service "+svc, http.StatusBadRequest)
		return
	}
	var scopes []string
	for _, s := range r.URL.Query()["scope"] {
		scopes = append(scopes, strings.Fields(s)...)
	}
	tok, err := ts.sign(user, scopes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ts.mu.Lock()
	ts.issued++
	ts.scopesOK = append(ts.scopesOK, scopes...)
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok, "expires_in": 300,
		"issued_at": time.Now().UTC().Format(time.RFC3339),
	})
}

// sign makes a JWT for subject granting scopes, each "type:name:action[,action]".
// Repository names contain no ':', but a registry host:port in a name would, so the
// type is before the first ':' and the actions after the last.
func (ts *TokenServer) sign(subject string, scopes []string) (string, error) {
	var access []resourceActions
	for _, s := range scopes {
		first, last := strings.Index(s, ":"), strings.LastIndex(s, ":")
		if first < 0 || first == last {
			continue
		}
		access = append(access, resourceActions{
			Type: s[:first], Name: s[first+1 : last], Actions: strings.Split(s[last+1:], ","),
		})
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ts.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(ts.certDER)}))
	if err != nil {
		return "", err
	}
	now := time.Now()
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	c := claims{
		Claims: jwt.Claims{
			Issuer:    ts.Issuer,
			Subject:   subject,
			Audience:  jwt.Audience{ts.Service},
			Expiry:    jwt.NewNumericDate(now.Add(5 * time.Minute)),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(id),
		},
		Access: access,
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}
