package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/records"
)

// openRecords opens the records store cfg names: PostgreSQL when records.postgres is set,
// else the SQLite file under dataDir.
func openRecords(ctx context.Context, cfg config.Config) (*records.Store, error) {
	pg := cfg.Records.Postgres
	url := pg.URL
	if pg.URLFile != "" {
		b, err := os.ReadFile(pg.URLFile)
		if err != nil {
			return nil, fmt.Errorf("records.postgres.urlFile: %w", err)
		}
		url = strings.TrimSpace(string(b))
	}
	if url != "" {
		return records.OpenPostgres(ctx, url)
	}
	path := cfg.SQLiteFile()
	if path == "" {
		return nil, fmt.Errorf("records: no dataDir, records.sqlitePath or records.postgres.url")
	}
	return records.OpenSQLite(ctx, path)
}

// recordsPruneEvery is how often the gateway deletes records past their retention.
const recordsPruneEvery = 6 * time.Hour

// pruneRecords deletes, now and then every recordsPruneEvery until ctx ends, decisions and
// sightings older than retention.
func pruneRecords(ctx context.Context, s *records.Store, retention time.Duration, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(recordsPruneEvery)
	defer t.Stop()
	for {
		if n, err := s.Prune(ctx, now().Add(-retention)); err != nil {
			log.Warn("records not pruned", slog.String("error", err.Error()))
		} else if n > 0 {
			log.Info("records pruned", slog.Int64("rows", n), slog.Duration("retention", retention))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// legacyRecordDate dates records copied from Redis, which kept no date with them: early
// enough that any record written since wins over them.
var legacyRecordDate = time.Unix(1, 0).UTC()

// importFromRedis copies the records gateways before the records store kept in Redis into
// s, and returns how many it copied and how many keys it skipped as unreadable.
func importFromRedis(ctx context.Context, rdb redis.UniversalClient, s *records.Store) (copied, skipped int, err error) {
	scan := func(ctx context.Context, c *redis.Client) error {
		for _, pattern := range gate.CachedRecordPatterns {
			iter := c.Scan(ctx, 0, pattern, 500).Iterator()
			for iter.Next(ctx) {
				key := iter.Val()
				val, err := c.Get(ctx, key).Bytes()
				if err == redis.Nil {
					continue // expired meanwhile
				}
				if err != nil {
					return fmt.Errorf("reading %s: %w", key, err)
				}
				ok, err := gate.ImportCachedRecord(ctx, s, key, val, legacyRecordDate)
				if err != nil {
					return err
				}
				if ok {
					copied++
				} else {
					skipped++
				}
			}
			if err := iter.Err(); err != nil {
				return fmt.Errorf("scanning %s: %w", pattern, err)
			}
		}
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		err = fmt.Errorf("unsupported Redis client %T", rdb)
	}
	return copied, skipped, err
}

// importFromRedisOnce copies the records a deployment kept in Redis into s on the first
// start with an empty store, unless records.importFromRedis is false.
func importFromRedisOnce(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, s *records.Store, log *slog.Logger) {
	if rdb == nil || (cfg.Records.ImportFromRedis != nil && !*cfg.Records.ImportFromRedis) {
		return
	}
	empty, err := s.Empty(ctx)
	if err != nil || !empty {
		return
	}
	copied, skipped, err := importFromRedis(ctx, rdb, s)
	if err != nil {
		log.Warn("records: copying the records held in Redis stopped; run portcullis records import-from-redis to finish",
			slog.Int("copied", copied), slog.String("error", err.Error()))
		return
	}
	if copied > 0 || skipped > 0 {
		log.Info("records: copied the records held in Redis into the store", slog.Int("copied", copied), slog.Int("skipped", skipped))
	}
}

// recordsStatus is the records store's line in /readyz.
func recordsStatus(s *records.Store) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		return s.Backend() + ": DOWN (pushes to fail-closed environments are refused until it is back): " + err.Error()
	}
	return s.Backend() + ": up"
}
