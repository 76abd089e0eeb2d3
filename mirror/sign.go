package mirror

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// MaxKeyBytes bounds a key file.
const MaxKeyBytes = 64 << 10

// LoadSigner reads a private key in PEM: a cosign.key ("ENCRYPTED SIGSTORE PRIVATE KEY",
// decrypted with password) or an unencrypted PKCS#8, EC or PKCS#1 key. ECDSA, Ed25519 and
// RSA keys sign over SHA-256, as cosign sign-blob does.
func LoadSigner(pemBytes, password []byte) (signature.Signer, error) {
	if len(pemBytes) > MaxKeyBytes {
		return nil, errors.New("signing key: file too large for a key")
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return s, nil
}

// PendingSigner is a signing key being decrypted in the background (a cosign.key's scrypt
// costs a third of a second of CPU): a collect fetches and writes blobs meanwhile, and
// signs at its end. It is a signature.Signer whose methods wait for the key.
type PendingSigner struct {
	done   chan struct{}
	signer signature.Signer
	err    error
}

// LoadSignerAsync starts LoadSigner(pemBytes, password) in a goroutine of its own.
func LoadSignerAsync(pemBytes, password []byte) *PendingSigner {
	p := &PendingSigner{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.signer, p.err = LoadSigner(pemBytes, password)
	}()
	return p
}

// Wait returns the key, or why it could not be loaded.
func (p *PendingSigner) Wait() (signature.Signer, error) {
	<-p.done
	return p.signer, p.err
}

// PublicKey waits for the key and returns its public half.
func (p *PendingSigner) PublicKey(opts ...signature.PublicKeyOption) (crypto.PublicKey, error) {
	s, err := p.Wait()
	if err != nil {
		return nil, err
	}
	return s.PublicKey(opts...)
}

// SignMessage waits for the key and signs message with it.
func (p *PendingSigner) SignMessage(message io.Reader, opts ...signature.SignOption) ([]byte, error) {
	s, err := p.Wait()
	if err != nil {
		return nil, err
	}
	return s.SignMessage(message, opts...)
}

// LoadVerifier reads a PEM public key (cosign.pub) the way cosign verify-blob --key does.
func LoadVerifier(pemBytes []byte) (signature.Verifier, error) {
	if len(pemBytes) > MaxKeyBytes {
		return nil, errors.New("public key: file too large for a key")
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w (want a PEM PUBLIC KEY block such as cosign.pub)", err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return v, nil
}

// signBlob returns the base64 signature of blob, the content of a cosign .sig file.
func signBlob(s signature.Signer, blob []byte) ([]byte, error) {
	sig, err := s.SignMessage(bytes.NewReader(blob))
	if err != nil {
		return nil, fmt.Errorf("signing bundle manifest: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(sig)), nil
}

// verifyBlob checks a base64 signature file's content over blob.
func verifyBlob(v signature.Verifier, sigFile, blob []byte) error {
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sigFile)))
	if err != nil {
		return fmt.Errorf("%s is not base64: %w", SignatureFile, err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(blob)); err != nil {
		return fmt.Errorf("%s does not verify with the given key: the bundle manifest was changed or signed by another key", SignatureFile)
	}
	return nil
}
