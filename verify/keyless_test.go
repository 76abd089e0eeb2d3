package verify_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/cosigntest"
	"github.com/portcullis-dev/portcullis/verify"
)

const (
	keylessIssuer  = "https://token.example.com"
	keylessSubject = "release@example.com"
)

// keylessFormats push a keyless signature of img in each stored format.
var keylessFormats = map[string]func(t *testing.T, r *reg, s *cosigntest.Sigstore, img image, subject, issuer string, o cosigntest.KeylessOptions){
	"legacy": func(t *testing.T, r *reg, s *cosigntest.Sigstore, img image, subject, issuer string, o cosigntest.KeylessOptions) {
		s.PushLegacyKeyless(t, r.host, img.repo, img.digest, subject, issuer, o)
	},
	"bundle": func(t *testing.T, r *reg, s *cosigntest.Sigstore, img image, subject, issuer string, o cosigntest.KeylessOptions) {
		s.PushKeylessBundle(t, r.host, img.repo, img.digest, subject, issuer, o)
	},
}

func keylessAuthority(name string, root []byte, subject, subjectRE, issuer string) verify.Authority {
	return verify.Authority{Name: name, Keyless: &verify.Keyless{Issuer: issuer, Subject: subject, SubjectRegExp: subjectRE, TrustedRoot: root}}
}

// wantRejected asserts res verified nothing and has a rejection of kind whose
// detail holds every one of parts.
func wantRejected(t *testing.T, res verify.Result, kind verify.Kind, parts ...string) {
	t.Helper()
	if len(res.Verified) != 0 {
		t.Fatalf("verified %+v, want a rejection", res.Verified)
	}
	for _, r := range res.Rejected {
		if r.Kind != kind {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(r.Detail, p)
		}
		if ok {
			return
		}
	}
	t.Fatalf("no %s rejection mentioning %q in %+v", kind, parts, res.Rejected)
}

func TestKeylessRightIdentityVerifies(t *testing.T) {
	for format, push := range keylessFormats {
		t.Run(format, func(t *testing.T) {
			r := distribution(t)
			s := cosigntest.NewSigstore(t)
			img := r.pushImage(t, "app")
			push(t, r, s, img, keylessSubject, keylessIssuer, cosigntest.KeylessOptions{})
			root := s.TrustedRoot(t)
			for _, a := range []verify.Authority{
				keylessAuthority("exact", root, keylessSubject, "", keylessIssuer),
				keylessAuthority("regexp", root, "", `.*@example\.com`, keylessIssuer),
			} {
				res := r.verify(t, img, a)
				if got := res.Authorities(); !slices.Equal(got, []string{a.Name}) {
					t.Errorf("authority %s: verified %v, rejected %+v", a.Name, got, res.Rejected)
				}
			}
		})
	}
}

func TestKeylessWrongIdentityDenied(t *testing.T) {
	for format, push := range keylessFormats {
		t.Run(format, func(t *testing.T) {
			r := distribution(t)
			s := cosigntest.NewSigstore(t)
			img := r.pushImage(t, "app")
			push(t, r, s, img, keylessSubject, keylessIssuer, cosigntest.KeylessOptions{})
			root := s.TrustedRoot(t)
			found := `subject "` + keylessSubject + `" from issuer "` + keylessIssuer + `"`
			for _, tc := range []struct {
				a        verify.Authority
				required string
			}{
				{keylessAuthority("subject", root, "other@example.com", "", keylessIssuer), `requires subject "other@example.com" from issuer "` + keylessIssuer + `"`},
				{keylessAuthority("issuer", root, keylessSubject, "", "https://accounts.example.org"), `requires subject "` + keylessSubject + `" from issuer "https://accounts.example.org"`},
				// anchored: a prefix match is not enough
				{keylessAuthority("regexp", root, "", `release@example`, keylessIssuer), `requires subject matching "release@example" from issuer`},
			} {
				res := r.verify(t, img, tc.a)
				wantRejected(t, res, verify.KindWrongIdentity, found, `authority "`+tc.a.Name+`" `+tc.required)
			}
		})
	}
}

func TestKeylessUntrustedCADenied(t *testing.T) {
	for format, push := range keylessFormats {
		t.Run(format, func(t *testing.T) {
			r := distribution(t)
			trusted, other := cosigntest.NewSigstore(t), cosigntest.NewSigstore(t)
			img := r.pushImage(t, "app")
			push(t, r, other, img, keylessSubject, keylessIssuer, cosigntest.KeylessOptions{})
			// The log and timestamp authority of other, whose entries verify; the
			// Fulcio CA of trusted, which did not issue the certificate.
			root := other.TrustedRootWithCA(t, trusted)
			res := r.verify(t, img, keylessAuthority("release", root, keylessSubject, "", keylessIssuer))
			wantRejected(t, res, verify.KindUnknownKey, `authority "release"`, "certificate not trusted")
		})
	}
}

func TestKeylessExpiredCertificateDenied(t *testing.T) {
	// The certificate is valid for ten minutes from now; the log integrated the entry
	// half an hour later and there is no timestamp from a timestamp authority: nothing
	// shows the signature was made while the certificate was valid.
	for format, push := range keylessFormats {
		t.Run(format, func(t *testing.T) {
			r := distribution(t)
			s := cosigntest.NewSigstore(t)
			img := r.pushImage(t, "app")
			push(t, r, s, img, keylessSubject, keylessIssuer, cosigntest.KeylessOptions{At: time.Now().Add(30 * time.Minute), NoTimestamp: true})
			res := r.verify(t, img, keylessAuthority("release", s.TrustedRoot(t), keylessSubject, "", keylessIssuer))
			wantRejected(t, res, verify.KindUnknownKey, `authority "release"`, "not valid at any time")
		})
	}
}

func TestKeylessTamperedPayloadDenied(t *testing.T) {
	for format, push := range keylessFormats {
		t.Run(format, func(t *testing.T) {
			r := distribution(t)
			s := cosigntest.NewSigstore(t)
			img := r.pushImage(t, "app")
			push(t, r, s, img, keylessSubject, keylessIssuer, cosigntest.KeylessOptions{Tamper: true})
			res := r.verify(t, img, keylessAuthority("release", s.TrustedRoot(t), keylessSubject, "", keylessIssuer))
			wantRejected(t, res, verify.KindTampered, `authority "release"`, "altered")
		})
	}
}

func TestKeylessBadTrustedRootIsAnError(t *testing.T) {
	r := distribution(t)
	img := r.pushImage(t, "app")
	_, err := r.verifier.Verify(t.Context(), img.repo, img.digest, []verify.Authority{keylessAuthority("release", []byte(`{"mediaType":1}`), keylessSubject, "", keylessIssuer)}, verify.Goal{})
	if err == nil || !strings.Contains(err.Error(), `authority "release"`) {
		t.Fatalf("err = %v, want an error naming the authority", err)
	}
}

func TestKeylessSignatureCountsForEveryMatchingAuthority(t *testing.T) {
	for format, push := range keylessFormats {
		t.Run(format, func(t *testing.T) {
			r := distribution(t)
			s := cosigntest.NewSigstore(t)
			img := r.pushImage(t, "app")
			push(t, r, s, img, keylessSubject, keylessIssuer, cosigntest.KeylessOptions{})
			root := s.TrustedRoot(t)
			res := r.verify(t, img,
				keylessAuthority("exact", root, keylessSubject, "", keylessIssuer),
				keylessAuthority("domain", root, "", `.*@example\.com`, keylessIssuer),
				keylessAuthority("other", root, "other@example.com", "", keylessIssuer))
			if got := res.Authorities(); !slices.Equal(got, []string{"domain", "exact"}) {
				t.Errorf("verified by %v, want domain and exact; rejected %+v", got, res.Rejected)
			}
		})
	}
}

func TestKeylessSignatureOfAnotherImageDenied(t *testing.T) {
	r := distribution(t)
	s := cosigntest.NewSigstore(t)
	img, other := r.pushImage(t, "app"), r.pushImage(t, "app")
	// A valid keyless signature of other, replayed under img's .sig tag.
	payload := cosigntest.Payload(r.host+"/app", other.digest)
	ann := s.LegacyKeylessAnnotations(t, payload, keylessSubject, keylessIssuer, cosigntest.KeylessOptions{})
	r.pushLegacy(t, img, legacySig{payload: payload, mediaType: simpleSigningMT, annotations: ann})
	res := r.verify(t, img, keylessAuthority("release", s.TrustedRoot(t), keylessSubject, "", keylessIssuer))
	wantRejected(t, res, verify.KindOtherDigest, `signed by "release" for "`+other.digest+`"`)
}
