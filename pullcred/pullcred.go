package pullcred

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
)

// UserPrefix starts the user name of every credential minted here; the rest is its id.
// The gateway reserves the prefix: a Basic credential whose user starts with it is a scan
// credential or nothing, never passed to the upstream.
const UserPrefix = "portcullis-scan-"

// secretBytes is the size of a credential's random secret.
const secretBytes = 32

// idBytes is the size of a credential's random id.
const idBytes = 16

// formatVersion is the version of the stored record.
const formatVersion = 1

// ErrInvalid means a credential is not one this gateway minted, or no longer is: unknown,
// wrong secret, expired or revoked. It deliberately does not say which.
var ErrInvalid = errors.New("not a valid scan credential (unknown, expired or revoked)")

// Store keeps the credentials' records; cache stores (Redis, memory) are ones, and a
// shared one lets every replica accept a credential another minted.
type Store interface {
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
}

// Issuer mints, checks and revokes scan credentials, keeping only a hash of each secret.
type Issuer struct {
	store Store
	now   func() time.Time
}

// Option sets an optional Issuer setting.
type Option func(*Issuer)

// WithClock sets the clock expiries are judged by (tests).
func WithClock(now func() time.Time) Option { return func(i *Issuer) { i.now = now } }

// New returns an Issuer keeping its records in store.
func New(store Store, opts ...Option) *Issuer {
	i := &Issuer{store: store, now: time.Now}
	for _, o := range opts {
		o(i)
	}
	return i
}

// Credential is one minted credential, with its secret: it exists only in the memory of
// the scan that minted it and in the request sent to the adapter.
type Credential struct {
	// ID names the credential; the user name is UserPrefix + ID.
	ID string
	// Secret is the password.
	Secret string
	// Grant is what the credential allows.
	Grant Grant
}

// Username is the credential's Basic user name.
func (c Credential) Username() string { return UserPrefix + c.ID }

// Authorization is the credential as an HTTP Basic Authorization header value.
func (c Credential) Authorization() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username()+":"+c.Secret))
}

// BearerAuthorization is the credential as a Bearer Authorization header value: the
// token is the Basic one's (base64 of user:secret). Clients built on go-containerregistry
// (Trivy, portcullis's own adapter) send a Bearer credential they were given as it is,
// whatever the registry's challenge, where they would take a Basic one to the token realm
// of a Bearer challenge (the upstream's, which knows nothing of it).
func (c Credential) BearerAuthorization() string {
	return "Bearer " + base64.StdEncoding.EncodeToString([]byte(c.Username()+":"+c.Secret))
}

// FromAuthorization reads a scan credential from an Authorization header value, Basic
// or Bearer; ok is false for anything else (the header is then someone else's).
func FromAuthorization(header string) (user, secret string, ok bool) {
	scheme, token, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || (!strings.EqualFold(scheme, "Basic") && !strings.EqualFold(scheme, "Bearer")) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token))
	if err != nil {
		return "", "", false
	}
	user, secret, found = strings.Cut(string(raw), ":")
	if !found || !IsScanUser(user) {
		return "", "", false
	}
	return user, secret, true
}

// Grant is what a credential allows: GET and HEAD of Digest's manifest and of blobs in
// Repository, until Expires.
type Grant struct {
	Repository string    `json:"repository"`
	Digest     string    `json:"digest"`
	Expires    time.Time `json:"expires"`
}

// record is what the store keeps: the grant and the secret's SHA-256 (the secret has 256
// random bits, so a fast hash is as good as a slow one).
type record struct {
	V          int    `json:"v"`
	Grant      Grant  `json:"grant"`
	SecretHash string `json:"secretSha256"`
}

// Mint makes a credential for pulling repo@digest, valid for ttl, and stores its record.
func (i *Issuer) Mint(ctx context.Context, repo, digest string, ttl time.Duration) (Credential, error) {
	if repo == "" || digest == "" {
		return Credential{}, errors.New("a scan credential needs a repository and a digest")
	}
	if ttl <= 0 {
		return Credential{}, errors.New("a scan credential needs a positive lifetime")
	}
	id, secret := make([]byte, idBytes), make([]byte, secretBytes)
	_, _ = rand.Read(id) // crypto/rand.Read never fails
	_, _ = rand.Read(secret)
	c := Credential{ID: hex.EncodeToString(id), Secret: base64.RawURLEncoding.EncodeToString(secret),
		Grant: Grant{Repository: repo, Digest: digest, Expires: i.now().Add(ttl).UTC()}}
	raw, err := json.Marshal(record{V: formatVersion, Grant: c.Grant, SecretHash: hashSecret(c.Secret)})
	if err != nil {
		return Credential{}, err
	}
	if err := i.store.Set(ctx, cache.ScanCredKey(c.ID), raw, ttl); err != nil {
		return Credential{}, fmt.Errorf("storing the scan credential: %w", err)
	}
	return c, nil
}

// Revoke ends c before its expiry (the scan is over).
func (i *Issuer) Revoke(ctx context.Context, c Credential) error {
	return i.store.Delete(ctx, cache.ScanCredKey(c.ID))
}

// Check returns what the credential user:secret allows. ErrInvalid when it is not a
// credential this gateway (any replica sharing the store) minted and has not revoked, or
// it expired; another error when the store could not be read.
func (i *Issuer) Check(ctx context.Context, user, secret string) (Grant, error) {
	id, ok := strings.CutPrefix(user, UserPrefix)
	if !ok || len(id) != 2*idBytes {
		return Grant{}, ErrInvalid
	}
	if _, err := hex.DecodeString(id); err != nil {
		return Grant{}, ErrInvalid
	}
	raw, found, err := i.store.Get(ctx, cache.ScanCredKey(id))
	if err != nil {
		return Grant{}, fmt.Errorf("reading scan credentials: %w", err)
	}
	if !found {
		return Grant{}, ErrInvalid
	}
	var rec record
	if json.Unmarshal(raw, &rec) != nil || rec.V != formatVersion || rec.SecretHash == "" {
		return Grant{}, ErrInvalid
	}
	want, err := hex.DecodeString(rec.SecretHash)
	if err != nil {
		return Grant{}, ErrInvalid
	}
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return Grant{}, ErrInvalid
	}
	if !i.now().Before(rec.Grant.Expires) {
		return Grant{}, ErrInvalid
	}
	return rec.Grant, nil
}

// IsScanUser reports whether user is in the namespace of scan credentials.
func IsScanUser(user string) bool { return strings.HasPrefix(user, UserPrefix) }

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
