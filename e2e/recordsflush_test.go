package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/internal/regtest"
)

// TestReplicasSurviveRedisFlush runs one scenario twice on two replicas sharing
// PostgreSQL (records) and Redis (cache): once as is, once with FLUSHALL between day 0 and
// day 5. The decisions are the same: Redis holds nothing that cannot be recomputed.
func TestReplicasSurviveRedisFlush(t *testing.T) {
	s := newRecordsScenario(t)
	redisBin := requireTool(t, "redis-server")
	plain := replicaScenario(t, s, redisBin, false)
	flushed := replicaScenario(t, s, redisBin, true)
	want := []string{
		"push base/runtime:1: accepted",
		"push team/app:1.0.0: accepted, inherited from base/runtime, 30 days left",
		"push team/app:1.0.1: accepted, inherited from base/runtime, 25 days left",
		"pull team/app:1.0.0: 200, inherited from base/runtime, 25 days left",
		"push team/app:1.0.2: accepted, inherited from base/runtime, 25 days left",
	}
	for i := range want {
		if i >= len(plain) || i >= len(flushed) || plain[i] != want[i] || flushed[i] != want[i] {
			t.Errorf("step %d: without flush %q, with flush %q, want %q", i, at(plain, i), at(flushed, i), want[i])
		}
	}
}

func at(xs []string, i int) string {
	if i < len(xs) {
		return xs[i]
	}
	return "(missing)"
}

// replicaScenario runs the scenario on two fresh replicas A and B and returns what each
// step decided.
func replicaScenario(t *testing.T, s *recordsScenario, redisBin string, flush bool) []string {
	t.Helper()
	pgURL := sharedPostgresSchema(t)
	rd := &privateRedis{bin: redisBin, port: freePort(t)}
	rd.start(t)
	t.Cleanup(rd.kill)
	reg := regtest.Registry(t)
	day0 := time.Date(2027, 5, 3, 9, 0, 0, 0, time.UTC)
	clock := newTestClock(t, day0)
	cfg := filepath.Join(t.TempDir(), "portcullis.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("scan:\n  db: %q\ncache:\n  redis:\n    addrs: [\"127.0.0.1:%s\"]\nrecords:\n  postgres:\n    url: %q\n", s.dbDir, rd.port, pgURL)))
	start := func() *gateway {
		return startGatewayEnv(t, []string{"PORTCULLIS_TEST_CLOCK=" + clock.path}, "--config", cfg, "--policy", s.policy, "--upstream", reg)
	}
	a, b := start(), start()
	var steps []string
	summary := func(text string) string {
		var out []string
		if strings.Contains(text, "inherited from the base image base/runtime@") {
			out = append(out, "inherited from base/runtime")
		}
		for _, n := range []string{"30", "25"} {
			if strings.Contains(text, n+" days left to fix (first seen "+day0.Format(time.DateOnly)) {
				out = append(out, n+" days left")
			}
		}
		if len(out) == 0 {
			return ""
		}
		return ", " + strings.Join(out, ", ")
	}
	push := func(gw *gateway, from, layer, ref string) {
		_, stderr, err := s.push(gw, from, layer, ref)
		verdict := "accepted"
		if err != nil {
			verdict = "refused"
		}
		if from == "" {
			steps = append(steps, "push "+ref+": "+verdict)
			return
		}
		steps = append(steps, "push "+ref+": "+verdict+summary(stderr))
	}
	push(a, "", s.baseTar, "base/runtime:1")
	push(a, "base/runtime:1", s.appTar, "team/app:1.0.0")
	if flush {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + rd.port})
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	clock.set(t, day0.AddDate(0, 0, 5))
	push(b, "base/runtime:1", s.app2Tar, "team/app:1.0.1")
	code, _, h := rawDo(t, http.MethodGet, b.url("/v2/team/app/manifests/1.0.0"), nil, map[string]string{"Accept": mediaManifest})
	steps = append(steps, fmt.Sprintf("pull team/app:1.0.0: %d%s", code, summary(strings.Join(h.Values("Warning"), " "))))
	push(a, "base/runtime:1", s.app2Tar, "team/app:1.0.2")
	return steps
}
