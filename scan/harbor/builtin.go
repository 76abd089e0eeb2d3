package harbor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/portcullis-dev/portcullis/scan/layer"
	"github.com/portcullis-dev/portcullis/scan/match"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
)

// ImageResult is what the built-in scanner found in one image.
type ImageResult struct {
	// Findings are the vulnerabilities found.
	Findings []match.Finding
	// DBRevision is the vulnerability database revision matched against.
	DBRevision string
	// Incomplete says a layer or the stacking hit a limit; Reasons says which.
	Incomplete bool
	Reasons    []string
}

// Builtin is the built-in scanner for the adapter server: it analyses every layer of an
// image with the gateway's layer analyzer and extractors, stacks them, and matches the
// packages against the vulnerability database imported into a directory. Unlike the
// gate's scanner it caches nothing: Harbor keeps the reports it asks for.
type Builtin struct {
	dbDir  string
	limits layer.Limits

	mu    sync.Mutex
	db    *vulndb.DB
	stamp time.Time
}

// NewBuiltin scans against the database imported into dbDir (`portcullis db import`).
func NewBuiltin(dbDir string) *Builtin {
	return &Builtin{dbDir: dbDir, limits: layer.DefaultLimits()}
}

// database opens the imported database, again when the import changed.
func (b *Builtin) database() (*vulndb.DB, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fi, err := os.Stat(filepath.Join(b.dbDir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("no vulnerability database in %s: import one with `portcullis db import`", b.dbDir)
	}
	if b.db != nil && fi.ModTime().Equal(b.stamp) {
		return b.db, nil
	}
	db, err := vulndb.Open(b.dbDir)
	if err != nil {
		return nil, fmt.Errorf("opening the vulnerability database: %w", err)
	}
	b.db, b.stamp = db, fi.ModTime()
	return db, nil
}

// DatabaseUpdated returns the date of the database's data: its newest record, else when
// it was imported.
func (b *Builtin) DatabaseUpdated() (time.Time, error) {
	db, err := b.database()
	if err != nil {
		return time.Time{}, err
	}
	st := db.Status()
	if !st.Newest.IsZero() {
		return st.Newest.UTC(), nil
	}
	return st.Imported.UTC(), nil
}

// ScanImage analyses the layers of img and matches their packages.
func (b *Builtin) ScanImage(ctx context.Context, img v1.Image) (ImageResult, error) {
	db, err := b.database()
	if err != nil {
		return ImageResult{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return ImageResult{}, fmt.Errorf("reading the image's layers: %w", err)
	}
	limits := b.limits
	results := make([]layer.Result, 0, len(layers))
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return ImageResult{}, fmt.Errorf("layer %d: %w", i+1, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return ImageResult{}, fmt.Errorf("pulling layer %s: %w", d, err)
		}
		res, err := layer.Analyze(ctx, rc, d.String(), limits, layer.DefaultExtractors(limits)...)
		rc.Close()
		if err != nil {
			return ImageResult{}, fmt.Errorf("analysing layer %s: %w", d, err)
		}
		if res.Digest != "" && res.Digest != d.String() {
			return ImageResult{}, fmt.Errorf("layer %s: the registry served bytes whose digest is %s", d, res.Digest)
		}
		results = append(results, res)
	}
	sq := layer.SquashContext(ctx, results)
	distro := match.Distro{ID: sq.Distro.ID, VersionID: sq.Distro.VersionID}
	return ImageResult{
		Findings:   match.Match(db, sq.Packages, distro),
		DBRevision: db.Revision(),
		Incomplete: sq.Incomplete,
		Reasons:    sq.IncompleteReasons,
	}, nil
}
