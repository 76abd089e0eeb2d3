package pullcred_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/regtest"
	"github.com/portcullis-dev/portcullis/pullcred"
)

const dgst = "sha256:0000000000000000000000000000000000000000000000000000000000000001"

// spyStore records what is written, to show the secret never is.
type spyStore struct {
	pullcred.Store
	written [][]byte
}

func (s *spyStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.written = append(s.written, append([]byte(key+" "), value...))
	return s.Store.Set(ctx, key, value, ttl)
}

func TestMintCheckRevoke(t *testing.T) {
	ctx := context.Background()
	store := &spyStore{Store: cache.NewMemory(1 << 20)}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	iss := pullcred.New(store, pullcred.WithClock(func() time.Time { return now }))
	c, err := iss.Mint(ctx, "team/app", dgst, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Username(), "portcullis-scan-") || len(c.ID) != 32 {
		t.Fatalf("user %q", c.Username())
	}
	if raw, _ := base64.RawURLEncoding.DecodeString(c.Secret); len(raw) != 32 {
		t.Fatalf("secret of %d bytes, want 32", len(raw))
	}
	g, err := iss.Check(ctx, c.Username(), c.Secret)
	if err != nil || g.Repository != "team/app" || g.Digest != dgst || !g.Expires.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("Check = %+v, %v", g, err)
	}
	for _, w := range store.written {
		if strings.Contains(string(w), c.Secret) {
			t.Fatalf("the store was given the secret: %s", w)
		}
	}
	// Both header forms read back; other headers are not scan credentials.
	for _, h := range []string{c.Authorization(), c.BearerAuthorization()} {
		if u, s, ok := pullcred.FromAuthorization(h); !ok || u != c.Username() || s != c.Secret {
			t.Fatalf("FromAuthorization(%q) = %q %q %v", h, u, s, ok)
		}
	}
	for _, h := range []string{"", "Basic " + base64.StdEncoding.EncodeToString([]byte("ci:pw")), "Bearer eyJhbGciOi.x.y", "Digest abc", "Basic !!!"} {
		if _, _, ok := pullcred.FromAuthorization(h); ok {
			t.Fatalf("FromAuthorization(%q) took it for a scan credential", h)
		}
	}

	refused := func(what, user, secret string) {
		t.Helper()
		if _, err := iss.Check(ctx, user, secret); !errors.Is(err, pullcred.ErrInvalid) {
			t.Fatalf("%s: Check = %v, want ErrInvalid", what, err)
		}
	}
	refused("wrong secret", c.Username(), c.Secret+"x")
	refused("secret of another", c.Username(), strings.Repeat("A", len(c.Secret)))
	refused("empty secret", c.Username(), "")
	refused("guessed id", "portcullis-scan-"+strings.Repeat("0", 32), c.Secret)
	refused("malformed id", "portcullis-scan-zz"+c.ID[2:], c.Secret)
	refused("short id", "portcullis-scan-abc", c.Secret)
	refused("not a scan user", "ci", c.Secret)

	now = now.Add(10 * time.Minute) // the store still has it (memory TTL is real time); the grant has ended
	refused("expired", c.Username(), c.Secret)
	now = now.Add(-time.Minute)
	if _, err := iss.Check(ctx, c.Username(), c.Secret); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	if err := iss.Revoke(ctx, c); err != nil {
		t.Fatal(err)
	}
	refused("revoked", c.Username(), c.Secret)

	if _, err := iss.Mint(ctx, "", dgst, time.Minute); err == nil {
		t.Fatal("minted a credential for no repository")
	}
	if _, err := iss.Mint(ctx, "team/app", dgst, 0); err == nil {
		t.Fatal("minted a credential without a lifetime")
	}
}

// A credential minted by one replica is accepted by another sharing Redis, expires with
// Redis's TTL, and a revocation by one is seen by the other.
func TestCredentialsAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	a := pullcred.New(cache.NewRedis(regtest.Redis(t, cache.Prefix+"scancred:*")))
	b := pullcred.New(cache.NewRedis(regtest.Redis(t)))
	c, err := a.Mint(ctx, "team/app", dgst, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := b.Check(ctx, c.Username(), c.Secret); err != nil || g.Repository != "team/app" {
		t.Fatalf("the other replica: %+v %v", g, err)
	}
	if err := b.Revoke(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(ctx, c.Username(), c.Secret); !errors.Is(err, pullcred.ErrInvalid) {
		t.Fatalf("revoked on the other replica: %v", err)
	}
	short, err := a.Mint(ctx, "team/app", dgst, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, err := b.Check(ctx, short.Username(), short.Secret); !errors.Is(err, pullcred.ErrInvalid) {
		t.Fatalf("expired: %v", err)
	}
}

// FuzzFromAuthorization feeds the header parser (outside input): it never panics, and
// what it accepts is a scan user.
func FuzzFromAuthorization(f *testing.F) {
	for _, s := range []string{"Basic cG9ydGN1bGxpcy1zY2FuLWFiYzpzZWNyZXQ=", "Bearer cG9ydGN1bGxpcy1zY2FuLWFiYzpzZWNyZXQ=", "Basic Y2k6cHc=", "Bearer a.b.c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if u, _, ok := pullcred.FromAuthorization(h); ok && !pullcred.IsScanUser(u) {
			t.Fatalf("accepted user %q", u)
		}
	})
}
