package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
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
// and the secrets in its files; cached under the blob digest and diffID the analysis
// computed, with the analyzer version, shared by replicas), stacks them, and matches the
// packages against the offline vulnerability database. An analysis that did not read its
// layer to the end is never shared (it is kept a few minutes in this process only), and a
// layer whose content is not the diffID the image configuration claims is reported as
// mismatched, never looked up or stored under the claim. Layers gives the layer analyses alone, without the database. An image's report is cached by manifest
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
	// unfinished keeps analyses that stopped before the end of their blob (incomplete),
	// by blob digest, for a few minutes in this process only: a hostile layer costs one
	// analysis per unfinishedTTL, and nothing any other image could find.
	unfinished *cache.Memory
}

// unfinishedTTL is how long an incomplete analysis is kept in process.
const unfinishedTTL = 10 * time.Minute

// NewScanner scans through reader, caching through flight, matching against the database
// imported into dbDir (see `portcullis db import`).
func NewScanner(reader LayerReader, flight *cache.Flight, dbDir string) *Scanner {
	return &Scanner{reader: reader, flight: flight, dbDir: dbDir, limits: layer.DefaultLimits(), checkGap: 30 * time.Second,
		unfinished: cache.NewMemory(32 << 20)}
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
	// OSUnknown says the image has OS packages (dpkg, apk) but no known distribution
	// release, so none of them could be checked; OSUnknownReason says what was missing.
	OSUnknown       bool   `json:"osUnknown,omitempty"`
	OSUnknownReason string `json:"osUnknownReason,omitempty"`
	// Mismatched are the layers whose content is not the diffID the image configuration
	// claims for them.
	Mismatched []policy.LayerMismatch `json:"mismatched,omitempty"`
	// DBRevision is the vulnerability database revision matched against.
	DBRevision string `json:"dbRevision"`
	// Disagreements are where an environment's scanners do not report alike (never
	// set by the built-in scanner alone, so never cached).
	Disagreements []policy.Disagreement `json:"disagreements,omitempty"`
}

// layerFlight is how layer analyses (and an image's list of them) are computed and kept:
// they depend on content alone, so they are kept a month.
var layerFlight = cache.FlightOptions{TTL: 30 * 24 * time.Hour, LockTTL: 30 * time.Second, ComputeTimeout: 10 * time.Minute}

// reportVersion is the format version of cached reports and layer results. 2: layers are
// keyed by blob digest and diffID, reports carry OSUnknown and Mismatched.
const reportVersion = 2

// uncached carries a computed value that must not be stored (an incomplete analysis or
// report, or a layer analysed under a claim it does not meet) out of a cache.Flight, which
// stores no error: joiners of the same computation get it too.
type uncached[T any] struct{ v T }

func (u *uncached[T]) Error() string { return "computed, not stored" }

// takeUncached returns the value err carries when it is an *uncached[T].
func takeUncached[T any](err error) (T, bool) {
	var u *uncached[T]
	if errors.As(err, &u) {
		return u.v, true
	}
	var zero T
	return zero, false
}

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
		s.db, s.dbErr = nil, &lastingError{msg: "no vulnerability database is imported; import one with portcullis db import",
			detail: fmt.Errorf("no vulnerability database in %s: import one with `portcullis db import --db %s PATH...`", s.dbDir, s.dbDir)}
		return nil, s.dbErr
	}
	if s.db != nil && fi.ModTime().Equal(s.dbStamp) {
		return s.db, nil
	}
	db, err := vulndb.Open(s.dbDir)
	if err != nil {
		s.dbErr = &lastingError{msg: "the imported vulnerability database cannot be read (the gateway's /readyz says why); import it again with portcullis db import",
			detail: fmt.Errorf("opening the vulnerability database: %w", err)}
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
	var le *lastingError
	if errors.As(err, &le) && le.detail != nil {
		return le.detail.Error()
	}
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
	// The matching rules are part of the key: findings matched under older rules are
	// computed again, not served until the next database import.
	key := cache.FindingsKey(digest, db.Revision()+"+"+match.Version)
	raw, err := s.flight.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		img, err := s.imageLayers(ctx, repo, m)
		if err != nil {
			return nil, err
		}
		rep := matchLayers(ctx, db, img)
		if rep.Incomplete {
			// Kept by no one: it may have stopped on a busy moment's time budget.
			return nil, &uncached[Report]{rep}
		}
		return cache.Encode(cache.KindFindings, reportVersion, rep)
	}, cache.FlightOptions{TTL: 7 * 24 * time.Hour, LockTTL: 30 * time.Second, ComputeTimeout: 10 * time.Minute})
	if rep, ok := takeUncached[Report](err); ok {
		return rep, nil
	}
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
	// Layers are the analyses of the layers, in the manifest's order; each has a DiffID:
	// the one computed from its content, or, for a layer whose analysis stopped early
	// (Incomplete), the one the configuration claims, unverified.
	Layers []layer.Result
	// Mismatched are the layers whose content is not the diffID the configuration claims
	// (and configurations listing more or fewer diff_ids than the manifest has layers).
	Mismatched []policy.LayerMismatch
}

// Layers returns the analysis of each layer of repo's image whose manifest is manifest,
// without matching anything: it needs no vulnerability database. Each layer is analysed
// once across replicas and cached by blob digest, diffID and analyzer version, as for Scan; the image's
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
	// The flight's value is the diff_ids the configuration claims, so that a later call
	// need not read it again (the layers themselves are cached each on its own, under
	// what they computed); a caller whose compute ran uses its results as they are. The
	// key names the layer blobs as well as the configuration: the configuration alone
	// does not fix the layers.
	var computed *ImageLayers
	key := cache.ImageKey(m.config, cache.LayersHash(m.layers), "layers/"+layer.AnalyzerVersion)
	raw, err := s.flight.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		claimed, err := s.claimedDiffIDs(ctx, repo, m)
		if err != nil {
			return nil, err
		}
		img, err := s.analyseLayers(ctx, repo, m, claimed)
		if err != nil {
			return nil, err
		}
		v, err := cache.Encode(cache.KindImage, reportVersion, claimed)
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
	var claimed []string
	if !cache.Decode(raw, cache.KindImage, reportVersion, &claimed) {
		return ImageLayers{}, fmt.Errorf("unreadable layer list for %s", m.config)
	}
	return s.analyseLayers(ctx, repo, m, claimed)
}

// claimedDiffIDs reads the diff_ids the image configuration of m lists.
func (s *Scanner) claimedDiffIDs(ctx context.Context, repo string, m scanManifest) ([]string, error) {
	blob, err := s.reader.Blob(ctx, repo, m.config, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the image configuration: %w", err)
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob, &cfg); err != nil {
		return nil, fmt.Errorf("the image configuration is not valid JSON: %w", err)
	}
	if cfg.RootFS.DiffIDs == nil {
		return []string{}, nil
	}
	return cfg.RootFS.DiffIDs, nil
}

// noClaim stands for a diff_ids entry the configuration does not have, or a layer the
// manifest does not have, in a LayerMismatch.
const noClaim = "(none)"

// analyseLayers analyses each layer of m (each once, cached) and compares what it
// computed with claimed, the configuration's diff_ids.
func (s *Scanner) analyseLayers(ctx context.Context, repo string, m scanManifest, claimed []string) (ImageLayers, error) {
	img := ImageLayers{Config: m.config, Layers: make([]layer.Result, len(m.layers))}
	for i, d := range m.layers {
		claim := noClaim
		if i < len(claimed) {
			claim = claimed[i]
		}
		res, err := s.layer(ctx, repo, d, claim)
		if err != nil {
			return ImageLayers{}, err
		}
		switch {
		case res.DiffID == "":
			// Stopped before the end: the content's diffID is unknown, and the claim
			// unverified. It names the layer in messages, nothing more.
			res.Incomplete = true
			if res.IncompleteReason == "" {
				res.IncompleteReason = "the analysis stopped before the end of the layer"
			}
			res.DiffID = claim
		case res.DiffID != claim:
			img.Mismatched = append(img.Mismatched, policy.LayerMismatch{Number: i + 1, Blob: d, Claimed: claim, Actual: res.DiffID})
		}
		img.Layers[i] = res
	}
	for i := len(m.layers); i < len(claimed); i++ {
		img.Mismatched = append(img.Mismatched, policy.LayerMismatch{Number: i + 1, Blob: noClaim, Claimed: claimed[i], Actual: noClaim})
	}
	return img, nil
}

// scanManifest is what the scanner reads from a manifest.
type scanManifest struct {
	index  bool
	config string
	layers []string
}

// parseManifest reads the config and layer digests of an image manifest, or notes an index;
// a manifest whose media type and shape disagree is refused (see ClassifyManifest).
func parseManifest(manifest []byte) (scanManifest, error) {
	var m struct {
		Config *struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	shape, err := ClassifyManifest(manifest, "")
	if err != nil {
		return scanManifest{}, err
	}
	if shape == ShapeIndex {
		return scanManifest{index: true}, nil
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return scanManifest{}, fmt.Errorf("reading the manifest: %w", err)
	}
	if m.Config == nil {
		return scanManifest{}, fmt.Errorf("the manifest names no config blob")
	}
	out := scanManifest{config: m.Config.Digest}
	for _, l := range m.Layers {
		out.layers = append(out.layers, l.Digest)
	}
	return out, nil
}

// matchLayers stacks the layers of img (under ctx's deadline: past it the stack is
// incomplete) and matches their packages against db.
func matchLayers(ctx context.Context, db *vulndb.DB, img ImageLayers) Report {
	sq := layer.SquashContext(ctx, img.Layers)
	distro := match.Distro{ID: sq.Distro.ID, VersionID: sq.Distro.VersionID}
	skipped := match.Skipped(sq.Packages, distro)
	rep := Report{
		Findings:   match.Match(db, sq.Packages, distro),
		Packages:   len(sq.Packages),
		Unchecked:  len(skipped),
		Incomplete: sq.Incomplete,
		Reasons:    sq.IncompleteReasons,
		Mismatched: img.Mismatched,
		DBRevision: db.Revision(),
	}
	rep.OSUnknown, rep.OSUnknownReason = osUnknown(distro, skipped)
	return rep
}

// osUnknown reports whether OS packages (dpkg, apk) could not be checked because the
// image's distribution release is unknown, and says why.
func osUnknown(distro match.Distro, skipped []match.Unchecked) (bool, string) {
	n, why := 0, ""
	for _, u := range skipped {
		if isOSEcosystem(u.Package.Ecosystem) && u.ReleaseUnknown {
			n++
			why = u.Reason
		}
	}
	if n == 0 {
		return false, ""
	}
	if distro.ID == "" {
		why = "no os-release in the image (/etc/os-release, /usr/lib/os-release)"
	}
	return true, fmt.Sprintf("%s; %d OS package(s) not checked", why, n)
}

// layer returns the analysis of the layer blob digest, whose diffID the image
// configuration claims is claim, computing it once across replicas. It is looked up and
// stored only under (digest, claim): an analysis is stored there only when it read the
// whole blob and computed exactly those two digests. An analysis whose diffID is another
// is stored under the pair it computed and returned (the caller reports the mismatch); one
// that stopped early (no DiffID) is kept only in this process, briefly (unfinished).
func (s *Scanner) layer(ctx context.Context, repo, digest, claim string) (layer.Result, error) {
	if raw, ok, _ := s.unfinished.Get(ctx, unfinishedKey(digest)); ok {
		var res layer.Result
		if cache.Decode(raw, cache.KindLayer, reportVersion, &res) {
			return res, nil
		}
	}
	if s.tee != nil {
		s.tee.await(ctx, digest)
	}
	raw, err := s.flight.Do(ctx, cache.LayerKey(digest, claim, layer.AnalyzerVersion), func(ctx context.Context) ([]byte, error) {
		body, err := s.reader.OpenBlob(ctx, repo, digest)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		res, err := s.analyzeBlob(ctx, body, digest)
		if err != nil {
			return nil, err
		}
		switch {
		case res.Digest != "" && res.Digest != digest:
			return nil, fmt.Errorf("layer %s: the registry served bytes whose digest is %s", digest, res.Digest)
		case res.Digest == "" || res.DiffID == "":
			if v, err := cache.Encode(cache.KindLayer, reportVersion, res); err == nil {
				_ = s.unfinished.Set(context.WithoutCancel(ctx), unfinishedKey(digest), v, unfinishedTTL)
			}
			return nil, &uncached[layer.Result]{res}
		case res.DiffID != claim:
			s.storeLayer(ctx, res)
			return nil, &uncached[layer.Result]{res}
		}
		return cache.Encode(cache.KindLayer, reportVersion, res)
	}, layerFlight)
	if res, ok := takeUncached[layer.Result](err); ok {
		return res, nil
	}
	if err != nil {
		return layer.Result{}, err
	}
	var res layer.Result
	if !cache.Decode(raw, cache.KindLayer, reportVersion, &res) {
		return layer.Result{}, fmt.Errorf("unreadable layer analysis for %s", digest)
	}
	if res.Digest != digest || res.DiffID != claim {
		// Stored under a key it did not compute: never trusted.
		return layer.Result{}, fmt.Errorf("the cached analysis of layer %s names blob %s, diffID %s", digest, res.Digest, res.DiffID)
	}
	return res, nil
}

// unfinishedKey names an incomplete analysis of the blob digest in Scanner.unfinished.
func unfinishedKey(digest string) string { return digest + "/" + layer.AnalyzerVersion }

// storeLayer caches a complete analysis under the blob digest and diffID it computed, for
// 30 days, shared by every image with that layer. res must have both.
func (s *Scanner) storeLayer(ctx context.Context, res layer.Result) error {
	_, err := s.flight.Do(ctx, cache.LayerKey(res.Digest, res.DiffID, layer.AnalyzerVersion), func(context.Context) ([]byte, error) {
		return cache.Encode(cache.KindLayer, reportVersion, res)
	}, layerFlight)
	return err
}

// analyzeBlob analyses one layer blob read from r, whose compressed digest is digest: the
// one place a blob is analysed, with the scanner's limits, every extractor and the secret
// search. The caller caches a complete result under the digests it reports (cache.LayerKey
// of Digest and DiffID, with layer.AnalyzerVersion); a result Analyze stopped early has no
// DiffID, and is never cached under a diffID.
func (s *Scanner) analyzeBlob(ctx context.Context, r io.Reader, digest string) (layer.Result, error) {
	limits := s.limits
	limits.Secrets = true
	res, err := layer.Analyze(ctx, r, digest, limits, layer.DefaultExtractors(limits)...)
	if err != nil {
		return layer.Result{}, fmt.Errorf("analysing layer %s: %w", digest, err)
	}
	return res, nil
}
