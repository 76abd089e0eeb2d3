package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Image names an image by repository and manifest digest.
type Image struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
}

// Baseline is the baseline the push of Repository@Digest was judged against. How is ""
// when the push found none; Manifest is the baseline's manifest when it was kept.
type Baseline struct {
	Repository     string    `json:"repository"`
	Digest         string    `json:"digest"`
	How            string    `json:"how,omitempty"`
	BaseRepository string    `json:"baseRepository,omitempty"`
	BaseDigest     string    `json:"baseDigest,omitempty"`
	Manifest       []byte    `json:"manifest,omitempty"`
	At             time.Time `json:"at"`
}

// MaxManifest bounds a baseline manifest kept with a baseline.
const MaxManifest = 4 << 20

// SetPrevious records digest as the last accepted push to repo, at at. An older record
// never replaces a newer one.
func (s *Store) SetPrevious(ctx context.Context, repo, digest string, at time.Time) error {
	if err := checkNames("repository", repo, "digest", digest); err != nil {
		return err
	}
	if err := checkTime("time", at); err != nil {
		return err
	}
	if _, err := s.ex.ExecContext(ctx, `INSERT INTO previous_push (repository, digest, at) VALUES ($1, $2, $3)
		ON CONFLICT (repository) DO UPDATE SET digest = excluded.digest, at = excluded.at WHERE previous_push.at <= excluded.at`,
		repo, digest, nanos(at)); err != nil {
		return fmt.Errorf("records: recording the previous push of %s: %w", repo, err)
	}
	return nil
}

// Previous returns the last accepted push to repo; ok is false when there is none.
func (s *Store) Previous(ctx context.Context, repo string) (digest string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT digest FROM previous_push WHERE repository = $1`, repo).Scan(&digest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("records: reading the previous push of %s: %w", repo, err)
	}
	return digest, true, nil
}

// SetBaseline records the baseline the push of b.Repository@b.Digest was judged against,
// replacing an earlier one.
func (s *Store) SetBaseline(ctx context.Context, b Baseline) error {
	if err := checkNames("repository", b.Repository, "digest", b.Digest); err != nil {
		return err
	}
	if err := checkTime("time", b.At); err != nil {
		return err
	}
	if b.How != "" {
		if err := checkNames("how", b.How, "base repository", b.BaseRepository, "base digest", b.BaseDigest); err != nil {
			return err
		}
	}
	if len(b.Manifest) > MaxManifest {
		return fmt.Errorf("records: %w: baseline manifest of %d bytes exceeds %d", ErrInvalid, len(b.Manifest), MaxManifest)
	}
	if _, err := s.ex.ExecContext(ctx, `INSERT INTO baselines (repository, digest, how, base_repository, base_digest, manifest, at) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (repository, digest) DO UPDATE SET how = excluded.how, base_repository = excluded.base_repository,
		base_digest = excluded.base_digest, manifest = excluded.manifest, at = excluded.at WHERE baselines.at <= excluded.at`,
		b.Repository, b.Digest, b.How, b.BaseRepository, b.BaseDigest, nullBytes(b.Manifest), nanos(b.At)); err != nil {
		return fmt.Errorf("records: recording the baseline of %s@%s: %w", b.Repository, b.Digest, err)
	}
	return nil
}

// Baseline returns the baseline the push of repo@digest was judged against; ok is false
// when none was recorded.
func (s *Store) Baseline(ctx context.Context, repo, digest string) (Baseline, bool, error) {
	b := Baseline{Repository: repo, Digest: digest}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT how, base_repository, base_digest, manifest, at FROM baselines WHERE repository = $1 AND digest = $2`,
		repo, digest).Scan(&b.How, &b.BaseRepository, &b.BaseDigest, &b.Manifest, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Baseline{}, false, nil
	case err != nil:
		return Baseline{}, false, fmt.Errorf("records: reading the baseline of %s@%s: %w", repo, digest, err)
	}
	b.At = fromNanos(at)
	if len(b.Manifest) == 0 {
		b.Manifest = nil
	}
	return b, true, nil
}

// SetLayers records img as the image last seen whose layers are summarised by layersHash.
func (s *Store) SetLayers(ctx context.Context, layersHash string, img Image, at time.Time) error {
	if err := checkNames("layers hash", layersHash, "repository", img.Repository, "digest", img.Digest); err != nil {
		return err
	}
	if err := checkTime("time", at); err != nil {
		return err
	}
	if _, err := s.ex.ExecContext(ctx, `INSERT INTO layer_index (layers_hash, repository, digest, at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (layers_hash) DO UPDATE SET repository = excluded.repository, digest = excluded.digest, at = excluded.at WHERE layer_index.at <= excluded.at`,
		layersHash, img.Repository, img.Digest, nanos(at)); err != nil {
		return fmt.Errorf("records: recording layers %s: %w", layersHash, err)
	}
	return nil
}

// Layers returns the image last seen whose layers are summarised by layersHash.
func (s *Store) Layers(ctx context.Context, layersHash string) (img Image, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT repository, digest FROM layer_index WHERE layers_hash = $1`, layersHash).Scan(&img.Repository, &img.Digest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Image{}, false, nil
	case err != nil:
		return Image{}, false, fmt.Errorf("records: reading layers %s: %w", layersHash, err)
	}
	return img, true, nil
}

// nullBytes stores an empty manifest as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
