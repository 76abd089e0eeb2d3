package gate

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/records"
)

// CachedRecordPatterns are the key patterns (Redis SCAN globs) under which gateways before
// the records store kept their records in the cache.
var CachedRecordPatterns = []string{
	cache.Prefix + cache.KindLedger + ":*",
	cache.Prefix + cache.KindFirstSeen + ":*",
	cache.Prefix + cache.KindPrevious + ":*",
	cache.Prefix + cache.KindBaseline + ":*",
	cache.Prefix + cache.KindLayers + ":*",
}

// legacy value formats, as gateways before the records store wrote them to the cache.
type (
	legacySighting struct {
		First   time.Time `json:"first"`
		Renewed time.Time `json:"renewed"`
	}
	legacyImage struct {
		Repository string `json:"repository"`
		Digest     string `json:"digest"`
	}
	legacyBaseline struct {
		How        string `json:"how,omitempty"`
		Repository string `json:"repository,omitempty"`
		Digest     string `json:"digest,omitempty"`
		Manifest   []byte `json:"manifest,omitempty"`
	}
)

// legacyVersion is the format version of the records gateways kept in the cache.
const legacyVersion = 1

// ImportCachedRecord copies one record a gateway before the records store kept in the
// cache (key and value as found there) into r, merging as records.Store.ImportLine does:
// a tag keeps its first digest, a sighting its earliest date. at dates records whose value
// carries no date. It reports false, without error, for a key that holds no record (another
// kind, or a value it cannot read); an error for a record r refused or could not store.
func ImportCachedRecord(ctx context.Context, r Importer, key string, value []byte, at time.Time) (bool, error) {
	rest, ok := strings.CutPrefix(key, cache.Prefix)
	if !ok {
		return false, nil
	}
	kind, rest, _ := strings.Cut(rest, ":")
	parts := strings.Split(rest, ":")
	unescape := func(s string) (string, bool) {
		v, err := url.PathUnescape(s)
		return v, err == nil && v != ""
	}
	var line records.Line
	switch kind {
	case cache.KindLedger:
		repo, ok1 := unescape(parts[0])
		if len(parts) != 2 || !ok1 {
			return false, nil
		}
		tag, ok2 := unescape(parts[1])
		if !ok2 || !strings.Contains(string(value), ":") {
			return false, nil
		}
		line.Tag = &records.TagRecord{Repository: repo, Tag: tag, Digest: string(value), At: at}
	case cache.KindFirstSeen:
		repo, ok1 := unescape(parts[0])
		if len(parts) != 2 || !ok1 {
			return false, nil
		}
		adv, ok2 := unescape(parts[1])
		var s legacySighting
		if !ok2 || !cache.Decode(value, cache.KindFirstSeen, legacyVersion, &s) || s.First.IsZero() {
			return false, nil
		}
		last := s.Renewed
		if last.Before(s.First) {
			last = s.First
		}
		line.Sighting = &records.Sighting{Repository: repo, Advisory: adv, First: s.First, LastSeen: last}
	case cache.KindPrevious:
		repo, ok1 := unescape(rest)
		var img legacyImage
		if !ok1 || !cache.Decode(value, cache.KindPrevious, legacyVersion, &img) || img.Digest == "" {
			return false, nil
		}
		line.Previous = &records.Push{Repository: repo, Digest: img.Digest, At: at}
	case cache.KindBaseline:
		if len(parts) != 3 {
			return false, nil
		}
		repo, ok1 := unescape(parts[0])
		var u legacyBaseline
		if !ok1 || !cache.Decode(value, cache.KindBaseline, legacyVersion, &u) {
			return false, nil
		}
		line.Baseline = &records.Baseline{Repository: repo, Digest: parts[1] + ":" + parts[2], How: u.How,
			BaseRepository: u.Repository, BaseDigest: u.Digest, Manifest: u.Manifest, At: at}
	case cache.KindLayers:
		var img legacyImage
		if !cache.Decode(value, cache.KindLayers, legacyVersion, &img) || img.Repository == "" {
			return false, nil
		}
		line.Layers = &records.LayerRecord{LayersHash: rest, Image: records.Image{Repository: img.Repository, Digest: img.Digest}, At: at}
	default:
		return false, nil
	}
	if err := r.ImportLine(ctx, line); err != nil {
		return false, fmt.Errorf("importing %s: %w", key, err)
	}
	return true, nil
}

// Importer merges exported records into a store (a *records.Store).
type Importer interface {
	ImportLine(ctx context.Context, l records.Line) error
}
