package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/scan/layer"
	"github.com/portcullis-dev/portcullis/scan/match"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
)

// LayerReader reads what the scanner needs from the upstream, as the gateway itself.
type LayerReader interface {
	Blob(ctx context.Context, repo, digest string, max int64) ([]byte, error)
	OpenBlob(ctx context.Context, repo, digest string) (io.ReadCloser, error)
}

// Scanner finds the vulnerabilities of images: it analyses each layer once (its packages
// and the secrets in its files; cached by diffID and analyzer version, shared by
// replicas), stacks them, and matches the packages against the offline vulnerability
// database. Layers gives the layer analyses alone, without the database. An image's report is cached by manifest
// digest and database revision, and computed once across replicas; importing a new
// database re-matches the cached layer inventories without reading any blob again.
type Scanner struct {
	reader LayerReader
	flight *cache.Flight
	dbDir  string
	limits layer.Limits

	mu       sync.Mutex
	db       *vulndb.DB
	dbStamp  time.Time
	dbErr    error
	checked  time.Time
	checkGap time.Duration

	// tee, when set, is analysing uploads: a layer it is still analysing is waited for
	// rather than read back.
	tee *UploadTee
}

// NewScanner scans through reader, caching through flight, matching against the database
// imported into dbDir (see `portcullis db import`).
func NewScanner(reader LayerReader, flight *cache.Flight, dbDir string) *Scanner {
	return &Scanner{reader: reader, flight: flight, dbDir: dbDir, limits: layer.DefaultLimits(), checkGap: 30 * time.Second}
}

// Report is what a scan found in one image.
type Report struct {
	// Index is true for an image index: its platform manifests are scanned on their own.
	Index bool `json:"index,omitempty"`
	// Findings are the vulnerabilities found.
	Findings []match.Finding `json:"findings,omitempty"`
	// Packages is how many packages were found; Unchecked how many could not be checked.
	Packages  int `json:"packages"`
	Unchecked int `json:"unchecked,omitempty"`
	// Incomplete says a layer hit a limit; Reasons says which and why.
	Incomplete bool     `json:"incomplete,omitempty"`
	Reasons    []string `json:"reasons,omitempty"`
	// DBRevision is the vulnerability database revision matched against.
	DBRevision string `json:"dbRevision"`
}

// layerFlight is how layer analyses (and an image's list of them) are computed and kept:
// they depend on content alone, so they are kept a month.
var layerFlight = cache.FlightOptions{TTL: 30 * 24 * time.Hour, LockTTL: 30 * time.Second, ComputeTimeout: 10 * time.Minute}

// reportVersion is the format version of cached reports and layer results.
const reportVersion = 1

// database returns the imported database, reloading it when the import changed.
func (s *Scanner) database() (*vulndb.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checked) < s.checkGap && (s.db != nil || s.dbErr != nil) {
		return s.db, s.dbErr
	}
	s.checked = time.Now()
	fi, err := os.Stat(filepath.Join(s.dbDir, "manifest.json"))
	if err != nil {
		s.db, s.dbErr = nil, fmt.Errorf("no vulnerability database in %s: import one with `portcullis db import --db %s PATH...`", s.dbDir, s.dbDir)
		return nil, s.dbErr
	}
	if s.db != nil && fi.ModTime().Equal(s.dbStamp) {
		return s.db, nil
	}
	db, err := vulndb.Open(s.dbDir)
	if err != nil {
		s.dbErr = fmt.Errorf("opening the vulnerability database: %w", err)
		return s.db, s.dbErr
	}
	s.db, s.dbStamp, s.dbErr = db, fi.ModTime(), nil
	return db, nil
}

// Reload makes the next scan look for a newly imported database at once, rather than
// within its periodic check.
func (s *Scanner) Reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checked = time.Time{}
}

// Status describes the database for /readyz, warning when it is older than maxAge.
func (s *Scanner) Status(maxAge time.Duration) string {
	db, err := s.database()
	if err != nil {
		return err.Error()
	}
	st := db.Status()
	line := fmt.Sprintf("revision %s, %d records, imported %s", st.Revision, st.Records, st.Imported.UTC().Format(time.RFC3339))
	if age := time.Since(st.Imported); maxAge > 0 && age > maxAge {
		line = fmt.Sprintf("STALE: imported %d days ago (older than %s): import a fresh export; %s", int(age.Hours()/24), maxAge, line)
	}
	return line
}

// Scan returns the report of repo@digest, whose manifest is manifest.
func (s *Scanner) Scan(ctx context.Context, repo, digest string, manifest []byte) (Report, error) {
	m, err := parseManifest(manifest)
	if err != nil {
		return Report{}, err
	}
	if m.index {
		return Report{Index: true}, nil
	}
	db, err := s.database()
	if err != nil {
		return Report{}, err
	}
	key := cache.FindingsKey(digest, db.Revision())
	raw, err := s.flight.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		img, err := s.imageLayers(ctx, repo, m)
		if err != nil {
			return nil, err
		}
		return cache.Encode(cache.KindFindings, reportVersion, matchLayers(db, img.Layers))
	}, cache.FlightOptions{TTL: 7 * 24 * time.Hour, LockTTL: 30 * time.Second, ComputeTimeout: 10 * time.Minute})
	if err != nil {
		return Report{}, err
	}
	var r Report
	if !cache.Decode(raw, cache.KindFindings, reportVersion, &r) {
		return Report{}, fmt.Errorf("unreadable scan report for %s", digest)
	}
	return r, nil
}

// ImageLayers is what each layer of one image holds, lowest layer first.
type ImageLayers struct {
	// Index is true for an image index: its platform manifests are analysed on their own.
	Index bool
	// Config is the digest of the image configuration.
	Config string
	// Layers are the analyses of the layers, in the manifest's order; each has a DiffID.
	Layers []layer.Result
}

// Layers returns the analysis of each layer of repo's image whose manifest is manifest,
// without matching anything: it needs no vulnerability database. Each layer is analysed
// once across replicas and cached by diffID and analyzer version, as for Scan; the image's
// layers are analysed as one computation that goes on when ctx ends (a pull that stops
// waiting), so that the next call finds them done.
func (s *Scanner) Layers(ctx context.Context, repo string, manifest []byte) (ImageLayers, error) {
	m, err := parseManifest(manifest)
	if err != nil {
		return ImageLayers{}, err
	}
	if m.index {
		return ImageLayers{Index: true}, nil
	}
	return s.imageLayers(ctx, repo, m)
}

// imageLayers analyses the layers of the image m as one computation across replicas.
func (s *Scanner) imageLayers(ctx context.Context, repo string, m scanManifest) (ImageLayers, error) {
	// The flight's value is the diffIDs (the layers themselves are cached each on its
	// own); a caller whose compute ran uses its results as they are.
	var computed *ImageLayers
	raw, err := s.flight.Do(ctx, cache.ImageKey(m.config, "layers/"+layer.AnalyzerVersion), func(ctx context.Context) ([]byte, error) {
		img, err := s.layers(ctx, repo, m)
		if err != nil {
			return nil, err
		}
		diffIDs := make([]string, len(img.Layers))
		for i, l := range img.Layers {
			diffIDs[i] = l.DiffID
		}
		v, err := cache.Encode(cache.KindImage, reportVersion, diffIDs)
		if err == nil {
			computed = &img
		}
		return v, err
	}, layerFlight)
	if err != nil {
		return ImageLayers{}, err
	}
	if computed != nil {
		return *computed, nil
	}
	var diffIDs []string
	if !cache.Decode(raw, cache.KindImage, reportVersion, &diffIDs) || len(diffIDs) != len(m.layers) {
		return ImageLayers{}, fmt.Errorf("unreadable layer list for %s", m.config)
	}
	img := ImageLayers{Config: m.config, Layers: make([]layer.Result, len(m.layers))}
	for i, d := range m.layers {
		res, err := s.layer(ctx, repo, d, diffIDs[i])
		if err != nil {
			return ImageLayers{}, err
		}
		img.Layers[i] = res
	}
	return img, nil
}

// scanManifest is what the scanner reads from a manifest.
type scanManifest struct {
	index  bool
	config string
	layers []string
}

// parseManifest reads the config and layer digests of an image manifest, or notes an index.
func parseManifest(manifest []byte) (scanManifest, error) {
	var m struct {
		Config *struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return scanManifest{}, fmt.Errorf("reading the manifest: %w", err)
	}
	if m.Config == nil {
		if m.Manifests != nil {
			return scanManifest{index: true}, nil
		}
		return scanManifest{}, fmt.Errorf("the manifest names no config blob")
	}
	out := scanManifest{config: m.Config.Digest}
	for _, l := range m.Layers {
		out.layers = append(out.layers, l.Digest)
	}
	return out, nil
}

// layers reads the image configuration for the diffIDs and analyses each layer (each
// once, cached).
func (s *Scanner) layers(ctx context.Context, repo string, m scanManifest) (ImageLayers, error) {
	blob, err := s.reader.Blob(ctx, repo, m.config, maxConfigBytes)
	if err != nil {
		return ImageLayers{}, fmt.Errorf("reading the image configuration: %w", err)
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob, &cfg); err != nil {
		return ImageLayers{}, fmt.Errorf("the image configuration is not valid JSON: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.layers) {
		return ImageLayers{}, fmt.Errorf("the image configuration lists %d diff_ids for %d layers", len(cfg.RootFS.DiffIDs), len(m.layers))
	}
	img := ImageLayers{Config: m.config, Layers: make([]layer.Result, len(m.layers))}
	for i, d := range m.layers {
		res, err := s.layer(ctx, repo, d, cfg.RootFS.DiffIDs[i])
		if err != nil {
			return ImageLayers{}, err
		}
		img.Layers[i] = res
	}
	return img, nil
}

// matchLayers stacks the layers and matches their packages against db.
func matchLayers(db *vulndb.DB, layers []layer.Result) Report {
	img := layer.Squash(layers)
	distro := match.Distro{ID: img.Distro.ID, VersionID: img.Distro.VersionID}
	return Report{
		Findings:   match.Match(db, img.Packages, distro),
		Packages:   len(img.Packages),
		Unchecked:  len(match.Skipped(img.Packages, distro)),
		Incomplete: img.Incomplete,
		Reasons:    img.IncompleteReasons,
		DBRevision: db.Revision(),
	}
}

// layer returns the analysis of one layer, computing it once across replicas.
func (s *Scanner) layer(ctx context.Context, repo, digest, diffID string) (layer.Result, error) {
	if s.tee != nil {
		s.tee.await(ctx, digest)
	}
	raw, err := s.flight.Do(ctx, cache.LayerKey(diffID, layer.AnalyzerVersion), func(ctx context.Context) ([]byte, error) {
		body, err := s.reader.OpenBlob(ctx, repo, digest)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		res, err := s.analyzeBlob(ctx, body, digest)
		if err != nil {
			return nil, err
		}
		if res.DiffID == "" {
			res.DiffID = diffID // the analysis stopped early; the config names it
		} else if res.DiffID != diffID {
			return nil, fmt.Errorf("layer %s: uncompressed digest %s, but the image configuration says %s", digest, res.DiffID, diffID)
		}
		return cache.Encode(cache.KindLayer, reportVersion, res)
	}, layerFlight)
	if err != nil {
		return layer.Result{}, err
	}
	var res layer.Result
	if !cache.Decode(raw, cache.KindLayer, reportVersion, &res) {
		return layer.Result{}, fmt.Errorf("unreadable layer analysis for %s", diffID)
	}
	return res, nil
}

// analyzeBlob analyses one layer blob read from r, whose compressed digest is digest: the
// one place a blob is analysed, with the scanner's limits, every extractor and the secret
// search. The caller caches the result under the diffID it reports (cache.LayerKey with
// layer.AnalyzerVersion); a result Analyze stopped early has no DiffID.
func (s *Scanner) analyzeBlob(ctx context.Context, r io.Reader, digest string) (layer.Result, error) {
	limits := s.limits
	limits.Secrets = true
	res, err := layer.Analyze(ctx, r, digest, limits, layer.DefaultExtractors(limits)...)
	if err != nil {
		return layer.Result{}, fmt.Errorf("analysing layer %s: %w", digest, err)
	}
	return res, nil
}
