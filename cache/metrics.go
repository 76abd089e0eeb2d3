package cache

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterName names the instrumentation scope of this package's metrics.
const meterName = "github.com/portcullis-dev/portcullis/cache"

// metrics holds the package's instruments; errors creating them leave working no-ops.
type metrics struct {
	hits         metric.Int64Counter
	misses       metric.Int64Counter
	redisErrors  metric.Int64Counter
	lockWaits    metric.Int64Counter
	computations metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider) *metrics {
	m := mp.Meter(meterName)
	hits, _ := m.Int64Counter("portcullis.cache.hits",
		metric.WithDescription("Cache lookups that found a value, by key kind and store."))
	misses, _ := m.Int64Counter("portcullis.cache.misses",
		metric.WithDescription("Cache lookups that found nothing, by key kind and store."))
	redisErrors, _ := m.Int64Counter("portcullis.cache.redis.errors",
		metric.WithDescription("Redis calls that failed, by operation."))
	lockWaits, _ := m.Int64Counter("portcullis.cache.lock.waits",
		metric.WithDescription("Flights that waited for another holder's computation, by key kind."))
	computations, _ := m.Int64Counter("portcullis.cache.computations",
		metric.WithDescription("Computations a Flight actually ran, by key kind."))
	return &metrics{hits, misses, redisErrors, lockWaits, computations}
}

// lookup counts one Get against store ("memory" or "redis").
func (m *metrics) lookup(ctx context.Context, store, key string, hit bool) {
	attrs := metric.WithAttributes(attribute.String("kind", KindOf(key)), attribute.String("store", store))
	if hit {
		m.hits.Add(ctx, 1, attrs)
	} else {
		m.misses.Add(ctx, 1, attrs)
	}
}

// kinded counts one event on c for key's kind.
func kinded(ctx context.Context, c metric.Int64Counter, key string) {
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", KindOf(key))))
}
