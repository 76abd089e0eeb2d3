package cache

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

func TestMetricsCountHitsAndMissesPerKind(t *testing.T) {
	c := requireRedis(t)
	key := keyspace(t, c)
	reader, mp := newMeter(t)
	stores := map[string]Store{
		"memory": NewMemory(1<<20, WithMeterProvider(mp)),
		"redis":  NewRedis(c, WithMeterProvider(mp)),
	}
	layer := LayerKey(dg1, dg2, key("analyzer"))
	tag := TagKey("team/app", key("tag"))
	for name, s := range stores {
		mustSet(t, s, layer, []byte("inventory"), time.Hour)
		mustGet(t, s, layer)
		mustGet(t, s, layer)
		mustGet(t, s, tag)
		mustGet(t, s, key("unschematic"))
		for _, tc := range []struct {
			metric, kind string
			want         int64
		}{
			{"portcullis.cache.hits", KindLayer, 2},
			{"portcullis.cache.misses", KindLayer, 0},
			{"portcullis.cache.misses", KindTag, 1},
			{"portcullis.cache.misses", KindOther, 1},
		} {
			got := counter(t, reader, tc.metric, attribute.String("store", name), attribute.String("kind", tc.kind))
			if got != tc.want {
				t.Errorf("%s %s{kind=%s} = %d, want %d", name, tc.metric, tc.kind, got, tc.want)
			}
		}
	}
}
