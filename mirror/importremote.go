package mirror

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// decisionsPath is the gateway's decisions API (proxy.DecisionsPath).
const decisionsPath = "/portcullis/v1/decisions/"

// maxDecisionBytes bounds a decisions API answer.
const maxDecisionBytes = 4 << 20

// sourceLayer is a blob of the checked layout, pushed as it is.
type sourceLayer struct {
	src  layoutSource
	name string
	hash v1.Hash
	size int64
	// count, when set, is told the size of every read (a ByteProgress bar).
	count func(int64)
}

func (l *sourceLayer) Digest() (v1.Hash, error) { return l.hash, nil }
func (l *sourceLayer) DiffID() (v1.Hash, error) {
	return v1.Hash{}, errors.New("a mirrored blob has no known diffID")
}
func (l *sourceLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.src.open(l.name)
	if err != nil || l.count == nil {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{countingReader{rc, l.count}, rc}, nil
}
func (l *sourceLayer) Uncompressed() (io.ReadCloser, error) { return nil, errors.New("not supported") }
func (l *sourceLayer) Size() (int64, error)                 { return l.size, nil }
func (l *sourceLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }

// decision is the part of the gateway's decisions API answer the import reads.
type decision struct {
	Verdict  string   `json:"verdict"`
	Message  string   `json:"message"`
	Warnings []string `json:"warnings"`
	Digest   string   `json:"digest"`
}

// decide asks the gateway what it would decide on a pull of repo@digest: signatures
// with its trust roots, scan, exceptions. An answer that is not the decisions API's
// (a registry that is not a portcullis gateway) is an error.
func (im *importer) decide(repo name.Repository, digest string) (*decision, error) {
	auth, err := im.o.Keychain.Resolve(repo)
	if err != nil {
		return nil, err
	}
	rt, err := transport.NewWithContext(im.ctx, repo.Registry, auth, im.o.Transport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("asking the gateway about %s@%s: %w", repo.RepositoryStr(), digest, err)
	}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: decisionsPath + repo.RepositoryStr() + "@" + digest, RawQuery: "action=pull"}
	req, err := http.NewRequestWithContext(im.ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the gateway about %s@%s: %w", repo.RepositoryStr(), digest, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDecisionBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the gateway's decisions API answered %d for %s@%s (is %s a portcullis gateway with a policy?): %.300s", resp.StatusCode, repo.RepositoryStr(), digest, repo.RegistryStr(), body)
	}
	var d decision
	if err := json.Unmarshal(body, &d); err != nil || d.Digest != digest {
		return nil, fmt.Errorf("%s answered the decisions API for %s@%s with something else (is it a portcullis gateway?)", repo.RegistryStr(), repo.RepositoryStr(), digest)
	}
	switch d.Verdict {
	case VerdictAllow, VerdictWarn, VerdictDeny:
	default:
		return nil, fmt.Errorf("the gateway's decision on %s@%s has an unknown verdict %q", repo.RepositoryStr(), digest, d.Verdict)
	}
	return &d, nil
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
