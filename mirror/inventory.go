package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// MaxInventoryBytes bounds an inventory file.
const MaxInventoryBytes = 256 << 20

// Inventory lists the digests an on-prem registry holds, per repository, so that a collect
// can leave them out of a delta bundle.
type Inventory struct {
	// Version is the format version, 1.
	Version int `json:"version"`
	// Registry is the on-prem registry it was taken from.
	Registry string `json:"registry"`
	// Created is when it was taken.
	Created time.Time `json:"created"`
	// Repositories maps an on-prem repository name to the digests of its manifests and
	// blobs.
	Repositories map[string][]string `json:"repositories"`

	index map[string]map[string]bool
}

// Has says whether repository repo holds digest.
func (inv *Inventory) Has(repo, digest string) bool {
	if inv == nil {
		return false
	}
	if inv.index == nil {
		inv.index = map[string]map[string]bool{}
		for r, ds := range inv.Repositories {
			set := make(map[string]bool, len(ds))
			for _, d := range ds {
				set[d] = true
			}
			inv.index[r] = set
		}
	}
	return inv.index[repo][digest]
}

// ReadInventory reads an inventory written by TakeInventory.
func ReadInventory(r io.Reader) (*Inventory, error) {
	dec := json.NewDecoder(io.LimitReader(r, MaxInventoryBytes))
	dec.DisallowUnknownFields()
	var inv Inventory
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("reading inventory: %w", err)
	}
	if inv.Version != 1 {
		return nil, fmt.Errorf("reading inventory: version %d (want 1)", inv.Version)
	}
	for r, ds := range inv.Repositories {
		for i, d := range ds {
			if !digestPattern.MatchString(d) {
				return nil, fmt.Errorf("reading inventory: repositories[%q][%d]: invalid digest %q", r, i, d)
			}
		}
	}
	return &inv, nil
}

// TakeInventory lists, for each repository of repos in the registry at host, every
// manifest reachable from its tags (with their referrers) and every blob under them.
func TakeInventory(ctx context.Context, host string, insecure bool, repos []string, opts ...remote.Option) (*Inventory, error) {
	inv := &Inventory{Version: 1, Registry: host, Created: time.Now().UTC(), Repositories: map[string][]string{}}
	nopts := []name.Option{name.StrictValidation}
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	for _, r := range repos {
		repo, err := name.NewRepository(host+"/"+r, nopts...)
		if err != nil {
			return nil, err
		}
		w := newWalker(ctx, opts)
		tags, err := w.listTags(repo)
		if err != nil {
			return nil, err
		}
		for t := range tags {
			d, err := w.get(repo.Tag(t))
			if err != nil {
				if isNotFound(err) {
					continue // deleted while listing
				}
				return nil, err
			}
			if err := w.walk(repo, r, d, nil, true, nil, 0); err != nil {
				return nil, err
			}
		}
		ds := make([]string, 0, len(w.objects))
		for d := range w.objects {
			ds = append(ds, d)
		}
		sort.Strings(ds)
		inv.Repositories[r] = ds
	}
	return inv, nil
}
